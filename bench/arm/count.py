"""Instructions an aarch64 program executes under qemu-aarch64 (-d in_asm,exec,nochain): every
translated block's instructions from the in_asm listing, times how often the block ran, counted in
three classes: vector (Advanced SIMD / FP register operands, and the words qemu's disassembler shows
as .byte: sdot), memory (loads, stores, prefetches) and the rest (integer, branches). Deterministic
and independent of the host's speed; qemu checks nothing about timing.
Usage: count.py CPU SYSROOT UNITS PROGRAM ARGS... -- runs PROGRAM with REPS=1 and REPS=11 (the
last argument is replaced) and prints the difference per call and per unit: total, then
vector / memory / other per unit."""
import re
import subprocess
import sys
import tempfile

VECTOR = re.compile(r"\b(v\d+|q\d+|d\d+|s\d+|h\d+|b\d+)\b")


def kind(text):
    mnemonic, _, operands = text.partition(" ")
    if mnemonic == ".byte":
        return 0
    if mnemonic.startswith(("ld", "st", "prfm")):
        return 1
    return 0 if VECTOR.search(operands) else 2


def executed(cpu, sysroot, cmd):
    with tempfile.NamedTemporaryFile(suffix=".log") as log:
        subprocess.run(["qemu-aarch64", "-cpu", cpu, "-L", sysroot, "-d", "in_asm,exec,nochain", "-D", log.name] + cmd,
                       check=True, stdout=subprocess.DEVNULL)
        size, cur, total = {}, None, [0, 0, 0]
        for line in open(log.name, errors="replace"):
            m = re.match(r"0x([0-9a-f]+):\s+[0-9a-f]+\s+(.*)", line)
            if m:
                if cur is None:
                    cur = int(m.group(1), 16)
                    size[cur] = [0, 0, 0]
                size[cur][kind(m.group(2).strip())] += 1
                continue
            cur = None
            m = re.match(r"Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/", line)
            if m:
                for i, n in enumerate(size.get(int(m.group(1), 16), (0, 0, 0))):
                    total[i] += n
        return total


if __name__ == "__main__":
    cpu, sysroot, units, cmd = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4:]
    one = executed(cpu, sysroot, cmd[:-1] + ["1"])
    eleven = executed(cpu, sysroot, cmd[:-1] + ["11"])
    per_call = [(e - o) / 10 for e, o in zip(eleven, one)]
    print(f"{sum(per_call):.0f} {sum(per_call) / units:.2f} " + " ".join(f"{c / units:.2f}" for c in per_call))
