"""Instructions an aarch64 program executes under qemu-aarch64 (-d in_asm,exec,nochain): every
translated block's instruction count from the in_asm listing, times how often the block ran.
Deterministic and independent of the host's speed; qemu checks nothing about timing.
Usage: count.py CPU SYSROOT UNITS PROGRAM ARGS... -- runs PROGRAM with REPS=1 and REPS=11 (the
last argument is replaced) and prints the difference per call and per unit."""
import re
import subprocess
import sys
import tempfile


def executed(cpu, sysroot, cmd):
    with tempfile.NamedTemporaryFile(suffix=".log") as log:
        subprocess.run(["qemu-aarch64", "-cpu", cpu, "-L", sysroot, "-d", "in_asm,exec,nochain", "-D", log.name] + cmd,
                       check=True, stdout=subprocess.DEVNULL)
        size, cur, total = {}, None, 0
        for line in open(log.name, errors="replace"):
            m = re.match(r"0x([0-9a-f]+):\s", line)
            if m:
                pc = int(m.group(1), 16)
                if cur is None:
                    cur = pc
                    size[cur] = 0
                size[cur] += 1
                continue
            cur = None
            m = re.match(r"Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/", line)
            if m:
                total += size.get(int(m.group(1), 16), 0)
        return total


if __name__ == "__main__":
    cpu, sysroot, units, cmd = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4:]
    one = executed(cpu, sysroot, cmd[:-1] + ["1"])
    eleven = executed(cpu, sysroot, cmd[:-1] + ["11"])
    per_call = (eleven - one) / 10
    print(f"{per_call:.0f} {per_call / units:.2f}")
