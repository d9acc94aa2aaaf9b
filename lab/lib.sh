# Shell helpers shared by the study scripts of lab/;
# source it, do not run it.

# train_once RUN TIMES [FLAGS...]: `looped train --out RUN FLAGS...`, resumable and run once. A finished
# RUN (it holds .done) is skipped; an interrupted one (config.json, no .done) resumes. TIMES is a file
# to append the training's CPU and wall seconds to, or - for none (a resumed run's line covers only
# its last segment).
train_once() {
  local run=$1 times=$2 resume=""
  shift 2
  [ -f "$run/.done" ] && return
  [ -f "$run/config.json" ] && resume="--resume"
  if [ "$times" = - ]; then
    looped train --out "$run" "$@" $resume
  else
    local TIMEFORMAT="cpu_s %U %S wall_s %R"
    { time looped train --out "$run" "$@" $resume 2>&3; } 3>&2 2>>"$times"
  fi
  touch "$run/.done"
}

# one_thread_out DIR: make DIR the study's output folder ($OUT) and run every process on one thread.
one_thread_out() {
  OUT=$1
  mkdir -p "$OUT"
  export OMP_NUM_THREADS=1
}
