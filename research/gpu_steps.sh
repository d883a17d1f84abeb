# Shared by the GPU scripts (gpu_checks.sh, gpu_models.sh); sourced, not run.
#
#   step NAME COMMAND...   run COMMAND, print its time, and count a failure in $failed
#   describe_machine       print the card, the software and the CPU count ($PY's torch)

failed=0
step() {
    local name=$1; shift
    echo; echo "== $name: $*"
    local start=$(date +%s%N)
    "$@" || { echo "!! $name failed (exit $?)"; failed=$((failed + 1)); }
    echo "== $name: $(( ($(date +%s%N) - start) / 1000000 )) ms"
}

describe_machine() {
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    $PY -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__,
'cuda', torch.version.cuda, torch.cuda.is_available() and torch.cuda.get_device_name(0))"
    nproc
    git log -1 --format='protobench %H' 2>/dev/null
}
