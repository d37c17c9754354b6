#!/bin/sh
# Renders the shipped French prompts from their texts (prompts/fr/*.txt) with
# espeak-ng and sox, to 8 kHz mono 16-bit WAV. The daemon never needs espeak-ng:
# the WAVs are committed. Run again after editing a text:
#   sh prompts/render.sh            (needs: apt-get install espeak-ng sox)
set -eu
cd "$(dirname "$0")/fr"
# say TEXT FILE: write FILE only when its text changes, so that only changed
# prompts are rendered again
say() {
    if [ "$(cat "$2" 2>/dev/null)" != "$1" ]; then printf '%s\n' "$1" > "$2"; fi
}
# the estimated-wait sentences, one per whole minute (announced as an upper bound)
n=1
while [ $n -le 30 ]; do
    f=$(printf 'attente-%02d.txt' $n)
    if [ $n -eq 1 ]; then
        say "Le temps d'attente est estimé à moins d'une minute." "$f"
    else
        say "Le temps d'attente est estimé à moins de $n minutes." "$f"
    fi
    n=$((n + 1))
done
say "Le temps d'attente est estimé à plus de 30 minutes." attente-plus.txt
# the position in the queue, announced with the wait
say "Vous êtes le prochain." position-01.txt
say "Une personne est avant vous." position-02.txt
n=3
while [ $n -le 30 ]; do
    say "$((n - 1)) personnes sont avant vous." "$(printf 'position-%02d.txt' $n)"
    n=$((n + 1))
done
say "Plus de 30 personnes sont avant vous." position-plus.txt
for t in *.txt; do
    w=${t%.txt}.wav
    # only what changed: a re-render is not byte-identical (sox dithers)
    [ -f "$w" ] && [ "$w" -nt "$t" ] && continue
    espeak-ng -v fr -s 150 -w /tmp/ld-prompt.$$.wav -f "$t"
    sox /tmp/ld-prompt.$$.wav -r 8000 -c 1 -b 16 "$w" norm -3
done
rm -f /tmp/ld-prompt.$$.wav
[ -f ../musique/attente.wav ] && exit 0
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
