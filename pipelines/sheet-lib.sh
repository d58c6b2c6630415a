# Shared by the sheet scripts (edges-sheet.sh, trail-sheet.sh); sourced, not run.

# getopts over "$@" with SPEC (e.g. "f:c:w:m:"): each option's value into opt_<letter>;
# the arguments after the options into the array `positional`. An unknown option: usage.
sheet_options() {
  local spec=$1 opt letter
  shift
  for letter in $(tr -d ':' <<< "$spec" | fold -w1); do
    unset "opt_$letter"
  done
  OPTIND=1
  while getopts "$spec" opt; do
    [ "$opt" = "?" ] && usage
    printf -v "opt_$opt" '%s' "$OPTARG"
  done
  shift $((OPTIND - 1))
  positional=("$@")
}

# A PNG's size into `width` and `height`, from its header (IHDR: two big-endian 32-bit
# numbers at byte 16).
png_size() {
  local w3 w2 w1 w0 h3 h2 h1 h0
  read -r w3 w2 w1 w0 h3 h2 h1 h0 < <(od -An -tu1 -j16 -N8 "$1")
  width=$(( (w3 << 24) | (w2 << 16) | (w1 << 8) | w0 ))
  height=$(( (h3 << 24) | (h2 << 16) | (h1 << 8) | h0 ))
}

# `crop_element`: a videocrop to X,Y,W,H of a width x height picture (identity for ""), and
# width and height set to the crop's.
crop_filter() {
  local cx cy cw ch
  crop_element="identity"
  [ -n "$1" ] || return 0
  IFS=, read -r cx cy cw ch <<< "$1"
  crop_element="videocrop left=$cx top=$cy right=$((width - cx - cw)) bottom=$((height - cy - ch))"
  width=$cw height=$ch
}
