#!/bin/bash
# The main job's wall time, an older commit against this checkout, alternating on one machine (README "The main
# job"): each argument "old" or "new" is one timed run in a fresh output folder, so machine drift hits both alike.
#
#   git worktree add /tmp/old de3a0fd          # the commit to compare with (the issue's "5 min 23 s" baseline)
#   OLD_TREE=/tmp/old bash bench/time_main_job.sh old new old new
#
# old: that tree's code on this venv (PYTHONPATH puts it before the editable install), `genbench run --models
# ddpm,vae,gan` then its `genbench report --out` (it had no report inside run); new: `genbench run --models
# ddpm,vae,gan` of this checkout, which writes the report, exactly as `make run`.  Prints one line per run.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY="$ROOT/.venv/bin/python"
OLD_TREE=${OLD_TREE:-/tmp/old}
for which in "$@"; do  # every argument checked before any run starts
  case $which in
    new) ;;
    old) [ -d "$OLD_TREE/genbench" ] || { echo "OLD_TREE=$OLD_TREE is not a genbench checkout: git worktree add it first"; exit 2; } ;;
    *) echo "arguments are old or new, got $which"; exit 2 ;;
  esac
done
for which in "$@"; do
  out=$(mktemp -d /tmp/main-job-$which-XXXX)
  t0=$(date +%s.%N)
  if [ "$which" = old ]; then
    (cd /tmp && PYTHONPATH="$OLD_TREE:$OLD_TREE/plugins" "$PY" -m genbench.cli run --models ddpm,vae,gan --out "$out/r" --no-progress \
      && PYTHONPATH="$OLD_TREE:$OLD_TREE/plugins" "$PY" -m genbench.cli report --out "$out/r") > "$out/log" 2>&1
  else
    (cd /tmp && "$PY" -m genbench.cli run --models ddpm,vae,gan --out "$out/r" --no-progress) > "$out/log" 2>&1
  fi
  t1=$(date +%s.%N)
  echo "$which $out: $("$PY" -c "print(round($t1 - $t0, 1))") s; cells: $(grep -ho '\[ok\] [a-z]* on digits seed 0 ([0-9.]*s)' "$out/log" | sed 's/ on digits seed 0//' | tr '\n' ' ')"
done
