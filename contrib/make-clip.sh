#!/bin/sh
# Regenerate the demo site's video, www/media/clip.mp4, and its poster, clip-poster.jpg.
#
# The clip is synthetic (ffmpeg's testsrc2 pattern, whose clock counts the seconds, and a
# short beep at each second), 30 s of 640x480 at 25 frames per second, H.264 (Main profile)
# and AAC in MP4, with:
#   - a keyframe at every whole second (-g 25, no scene-cut keyframes), so a seek lands
#     exactly where it asked;
#   - the index (moov) at the start (+faststart), so a player knows where every second is
#     after reading its first 24 KB;
#   - about 1.2 Mbit/s (a light grain keeps the encoder busy), so the file is about 4.6 MiB:
#     too big for a browser to fetch in one go with preload="metadata". It reads the head,
#     stops, and every seek to a part it has not loaded is a new Range request, a 206 in
#     evserver's access log.
#
# Only needed to regenerate the files, never to serve them:
#   apt-get install ffmpeg && sh contrib/make-clip.sh
# The same ffmpeg build gives the same bytes (single-threaded, bit-exact, no metadata).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-"$here/../www/media"}
seconds=30
fps=25

command -v ffmpeg >/dev/null || { echo "make-clip.sh: needs ffmpeg (apt-get install ffmpeg)" >&2; exit 1; }
mkdir -p "$out"
tmp="$out/.clip-$$.mp4"
trap 'rm -f "$tmp"' EXIT

ffmpeg -hide_banner -loglevel error -y -threads 1 \
  -f lavfi -i "testsrc2=size=640x480:rate=$fps:duration=$seconds" \
  -f lavfi -i "sine=frequency=880:beep_factor=2:sample_rate=48000:duration=$seconds" \
  -filter_complex "[0:v]noise=alls=6:allf=t,format=yuv420p[v];[1:a]volume=0.25[a]" \
  -map "[v]" -map "[a]" \
  -c:v libx264 -preset medium -profile:v main -threads 1 \
  -b:v 1200k -maxrate 1500k -bufsize 3000k \
  -g $fps -keyint_min $fps -sc_threshold 0 \
  -c:a aac -b:a 64k -ac 1 \
  -map_metadata -1 -fflags +bitexact -flags:v +bitexact -flags:a +bitexact \
  -movflags +faststart \
  "$tmp"
mv "$tmp" "$out/clip.mp4"

# The poster: the frame at 2 s, as the browser shows it before playing (a small JPEG).
ffmpeg -hide_banner -loglevel error -y -ss 2 -i "$out/clip.mp4" -frames:v 1 \
  -q:v 6 -map_metadata -1 -fflags +bitexact -flags:v +bitexact "$out/clip-poster.jpg"

ls -l "$out/clip.mp4" "$out/clip-poster.jpg"
