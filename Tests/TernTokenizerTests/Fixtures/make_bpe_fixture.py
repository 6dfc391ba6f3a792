import json, subprocess, sys
sys.path.insert(0, "/tmp/bpefix")
from corpus import TEXTS
LB = "/root/.cache/tern-peer/llama_cpp_python-0.3.36/vendor/llama.cpp/build/bin/llama-tokenize"
models = {"smollm2-135m-instruct": "/tmp/models/smollm2-135m-instruct-q4_1.gguf",
          "qwen2.5-coder-0.5b-instruct": "/tmp/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"}
out = open(sys.argv[1], "w")
for name, path in models.items():
    for t in TEXTS:
        for special in (False, True):
            args = [LB, "-m", path, "--stdin", "--ids", "--log-disable", "--no-bos"]
            if not special: args.append("--no-parse-special")
            r = subprocess.run(args, input=t.encode(), capture_output=True, check=True)
            ids = json.loads(r.stdout.decode().strip().splitlines()[-1])
            out.write(json.dumps({"model": name, "text": t, "parse_special": special, "ids": ids}, ensure_ascii=False) + "\n")
