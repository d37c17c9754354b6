#!/bin/sh
# Renders the shipped French prompts from their texts (prompts/fr/*.txt) with
# espeak-ng and sox, to 8 kHz mono 16-bit WAV. The daemon never needs espeak-ng:
# the WAVs are committed. Run again after editing a text:
#   sh prompts/render.sh            (needs: apt-get install espeak-ng sox)
set -eu
cd "$(dirname "$0")/fr"
# the estimated-wait sentences, one per whole minute (announced as an upper bound)
n=1
while [ $n -le 30 ]; do
    f=$(printf 'attente-%02d.txt' $n)
    if [ $n -eq 1 ]; then
        echo "Le temps d'attente est estimé à moins d'une minute." > "$f"
    else
        echo "Le temps d'attente est estimé à moins de $n minutes." > "$f"
    fi
    n=$((n + 1))
done
echo "Le temps d'attente est estimé à plus de 30 minutes." > attente-plus.txt
for t in *.txt; do
    w=${t%.txt}.wav
    espeak-ng -v fr -s 150 -w /tmp/ld-prompt.$$.wav -f "$t"
    sox /tmp/ld-prompt.$$.wav -r 8000 -c 1 -b 16 "$w" norm -3
done
rm -f /tmp/ld-prompt.$$.wav
# The hold music: a calm synthesized arpeggio (C, A minor, F, G), 24 s, made
# with sox alone so that it is free of rights. Looped by the daemon.
cd ../musique
parts=""
i=0
for chord in "C4 E4 G4 C5" "A3 C4 E4 A4" "F3 A3 C4 F4" "G3 B3 D4 G4"; do
    for rep in 1 2 3; do
        for note in $chord; do
            f=/tmp/ld-note.$$.$i.wav
            sox -n -r 8000 -c 1 -b 16 "$f" synth 0.5 pluck "$note" fade 0.01 0.5 0.2 vol 0.6
            parts="$parts $f"
            i=$((i + 1))
        done
    done
done
sox $parts attente.wav norm -6
rm -f /tmp/ld-note.$$.*.wav
