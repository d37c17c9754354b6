#!/usr/bin/env python3
"""Write raw 8 kHz A-law (G.711) audio of DTMF tones, for in-band tests:
  ./make-tones.py --digits 11 --tone-ms 150 --gap-ms 2500 -o keys.al
Each key is its ITU-T Q.23 pair of sines at -10 dBm0-ish each, then silence.
Feed the file to make-pcap.py --audio to get an RTP pcap for SIPp.
Standard library only (no audioop: it is gone from Python 3.13).
"""
import argparse, math

LOW = {"1": 697, "2": 697, "3": 697, "A": 697, "4": 770, "5": 770, "6": 770, "B": 770,
       "7": 852, "8": 852, "9": 852, "C": 852, "*": 941, "0": 941, "#": 941, "D": 941}
HIGH = {"1": 1209, "4": 1209, "7": 1209, "*": 1209, "2": 1336, "5": 1336, "8": 1336, "0": 1336,
        "3": 1477, "6": 1477, "9": 1477, "#": 1477, "A": 1633, "B": 1633, "C": 1633, "D": 1633}


def alaw(sample):
    """ITU-T G.711 A-law encoding of one 16-bit linear sample."""
    sign = 0x80 if sample >= 0 else 0x00
    if sample < 0:
        sample = -sample - 1
    sample = min(sample, 32767) >> 3
    if sample < 32:
        seg, mant = 0, sample >> 1
    else:
        seg = sample.bit_length() - 5
        mant = (sample >> seg) & 0x0F
    return (sign | (seg << 4) | mant) ^ 0x55


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--digits", required=True)
    ap.add_argument("--tone-ms", type=int, default=150)
    ap.add_argument("--gap-ms", type=int, default=500)
    ap.add_argument("--lead-ms", type=int, default=200)
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    out = bytearray(alaw(0) for _ in range(8 * a.lead_ms))
    for d in a.digits.upper():
        lo, hi = LOW[d], HIGH[d]
        for n in range(8 * a.tone_ms):
            t = n / 8000.0
            s = 7000 * math.sin(2 * math.pi * lo * t) + 7000 * math.sin(2 * math.pi * hi * t)
            out.append(alaw(int(s)))
        out.extend(alaw(0) for _ in range(8 * a.gap_ms))
    # whole 20 ms frames
    out.extend(alaw(0) for _ in range((160 - len(out) % 160) % 160))
    open(a.output, "wb").write(out)


if __name__ == "__main__":
    main()
