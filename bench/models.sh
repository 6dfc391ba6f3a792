# Sourced by bench/families.sh and bench/greedy.sh: the real models (scripts/fetch-model.sh names)
# and a --mem-budget for each that makes it stream most of its weights.
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(gemma-3-270m smollm2-135m-instruct qwen2.5-coder-0.5b-instruct qwen2.5-coder-1.5b-instruct)
declare -A budget=([gemma-3-270m]=160M [smollm2-135m-instruct]=80M [qwen2.5-coder-0.5b-instruct]=256M
                   [qwen2.5-coder-1.5b-instruct]=256M)
