"""Extract one drum kit (bank 128, preset 0 "Standard") from a General MIDI soundfont into a small .sf2.

    PYTHONPATH=. .venv/bin/python scripts/make_soundfont.py [--all_keys] [--source /usr/share/sounds/sf2/FluidR3_GM.sf2]
        [--out assets/soundfont/FluidR3_GM_drums.sf2]

Only the 9 keys the app and `musicvae render` play (each drum class's exemplar pitch) are kept, unless
``--all_keys``.  The preset, its instruments and their samples are copied unchanged (zones, generators, modulators,
sample data and loops); indexes are renumbered.  SoundFont 2.01 layout: RIFF 'sfbk' with LIST
INFO, LIST sdta (smpl: 16-bit samples, each followed by 46 zero points) and LIST pdta (phdr pbag
pmod pgen inst ibag imod igen shdr, each ending with a terminal record).
"""

from __future__ import annotations

import argparse
import struct
from pathlib import Path

from musicvae.pattern import EXEMPLAR_PITCHES

RECORDS = {"phdr": "<20sHHHIII", "pbag": "<HH", "pmod": "<HHhHH", "pgen": "<HH", "inst": "<20sH",
           "ibag": "<HH", "imod": "<HHhHH", "igen": "<HH", "shdr": "<20sIIIIIBbHH"}
INSTRUMENT, SAMPLE_ID, KEY_RANGE = 41, 53, 43
PAD = 46


def chunks(data: bytes, start: int, end: int):
    while start < end:
        tag, size = struct.unpack_from("<4sI", data, start)
        yield tag.decode("latin-1"), data[start + 8:start + 8 + size]
        start += 8 + size + (size & 1)


def read(path: Path) -> tuple[dict[str, list[tuple]], bytes, list[tuple[str, bytes]]]:
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"sfbk", f"{path} is not a SoundFont 2 file"
    tables: dict[str, list[tuple]] = {}
    smpl, info = b"", []
    for tag, body in chunks(data, 12, len(data)):
        assert tag == "LIST"
        kind = body[:4].decode()
        for sub, content in chunks(body, 4, len(body)):
            if kind == "INFO":
                info.append((sub, content))
            elif sub == "smpl":
                smpl = content
            elif sub in RECORDS:
                fmt = RECORDS[sub]
                tables[sub] = list(struct.iter_unpack(fmt, content))
    return tables, smpl, info


def extract(tables: dict[str, list[tuple]], smpl: bytes, bank: int, preset: int, keys: tuple[int, ...]):
    phdr = tables["phdr"]
    index = next(i for i, p in enumerate(phdr[:-1]) if p[2] == bank and p[1] == preset)
    new = {k: [] for k in RECORDS}
    inst_map: dict[int, int] = {}
    sample_map: dict[int, int] = {}
    samples: list[int] = []

    def zones(bags, gens, mods, first, last, remap_oper, remap):
        """Copy bags [first, last) with their generators and modulators, renumbered; a zone whose key
        range holds none of ``keys`` is left out."""
        out_bags = []
        for b in range(first, last):
            g0, m0 = tables[bags][b]
            g1, m1 = tables[bags][b + 1]
            ranges = [amount for oper, amount in tables[gens][g0:g1] if oper == KEY_RANGE]
            if ranges and not any((ranges[0] & 0xFF) <= key <= (ranges[0] >> 8) for key in keys):
                continue
            out_bags.append((len(new[gens]), len(new[mods])))
            for oper, amount in tables[gens][g0:g1]:
                new[gens].append((oper, remap(amount) if oper == remap_oper else amount))
            new[mods].extend(tables[mods][m0:m1])
        return out_bags

    def sample(old: int) -> int:
        if old not in sample_map:
            sample_map[old] = len(samples)
            samples.append(old)
            link = tables["shdr"][old][8]
            if tables["shdr"][old][9] & 0x0E and link < len(tables["shdr"]) - 1:  # stereo pairs come together
                sample(link)
        return sample_map[old]

    def instrument(old: int) -> int:
        if old not in inst_map:
            inst_map[old] = len(new["inst"])
            name, first = tables["inst"][old]
            last = tables["inst"][old + 1][1]
            new["inst"].append((name, len(new["ibag"])))
            new["ibag"].extend(zones("ibag", "igen", "imod", first, last, SAMPLE_ID, sample))
        return inst_map[old]

    name, prog, bnk, first, lib, genre, morph = phdr[index]
    last = phdr[index + 1][3]
    new["phdr"].append((name, prog, bnk, 0, lib, genre, morph))
    new["pbag"].extend(zones("pbag", "pgen", "pmod", first, last, INSTRUMENT, instrument))
    # terminal records
    new["phdr"].append((b"EOP".ljust(20, b"\0"), 0, 0, len(new["pbag"]), 0, 0, 0))
    new["pbag"].append((len(new["pgen"]), len(new["pmod"])))
    new["pgen"].append((0, 0))
    new["pmod"].append((0, 0, 0, 0, 0))
    new["inst"].append((b"EOI".ljust(20, b"\0"), len(new["ibag"])))
    new["ibag"].append((len(new["igen"]), len(new["imod"])))
    new["igen"].append((0, 0))
    new["imod"].append((0, 0, 0, 0, 0))
    data = bytearray()
    for old in samples:
        sname, start, end, loop_start, loop_end, rate, pitch, corr, link, kind = tables["shdr"][old]
        base = len(data) // 2
        data += smpl[start * 2:end * 2] + b"\0" * (PAD * 2)
        new_link = sample_map.get(link, 0) if kind & 0x0E else 0
        new["shdr"].append((sname, base, base + end - start, base + loop_start - start, base + loop_end - start,
                            rate, pitch, corr, new_link, kind))
    new["shdr"].append((b"EOS".ljust(20, b"\0"), 0, 0, 0, 0, 0, 0, 0, 0, 0))
    return new, bytes(data)


def chunk(tag: str, body: bytes) -> bytes:
    return struct.pack("<4sI", tag.encode(), len(body)) + body + (b"\0" if len(body) & 1 else b"")


def write(path: Path, tables: dict[str, list[tuple]], smpl: bytes, info: list[tuple[str, bytes]]) -> None:
    info_body = b"INFO" + b"".join(chunk(tag, body) for tag, body in info)
    sdta = b"sdta" + chunk("smpl", smpl)
    pdta = b"pdta" + b"".join(chunk(tag, b"".join(struct.pack(RECORDS[tag], *r) for r in tables[tag]))
                              for tag in RECORDS)
    body = b"sfbk" + chunk("LIST", info_body) + chunk("LIST", sdta) + chunk("LIST", pdta)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(chunk("RIFF", body))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"))
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "assets" / "soundfont"
                        / "FluidR3_GM_drums.sf2")
    parser.add_argument("--bank", type=int, default=128)
    parser.add_argument("--preset", type=int, default=0)
    parser.add_argument("--all_keys", action="store_true",
                        help="keep every key of the kit (default: the 9 pitches the app plays, one per drum class)")
    args = parser.parse_args()
    tables, smpl, info = read(args.source)
    keys = tuple(range(128)) if args.all_keys else EXEMPLAR_PITCHES
    new, data = extract(tables, smpl, args.bank, args.preset, keys)

    def text(value: str) -> bytes:
        raw = value.encode("ascii") + b"\0"
        return raw + (b"\0" if len(raw) & 1 else b"")

    info = [(tag, body) for tag, body in info if tag in ("ifil", "isng", "IENG", "ICOP")]
    info.insert(2, ("INAM", text(f"FluidR3_GM drum kit (bank {args.bank}, preset {args.preset}) extract")))
    info.append(("ICMT", text(f"Extracted from {args.source.name} by scripts/make_soundfont.py; MIT licence, "
                              "see LICENSE beside this file.")))
    write(args.out, new, data, info)
    print(f"{args.out}: {len(new['inst']) - 1} instruments, {len(new['shdr']) - 1} samples, "
          f"{args.out.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
