#!/usr/bin/env python3
"""Cross-check spindle's HTTP/2 codec against Python's `hpack` and `hyperframe`.

Used by tests/h2_python_interop.rs. Modes:

  gen-hpack SEED N    print N header blocks encoded by hpack, one per line:
                      "<block hex>\t<fields>", with a line "RESET" between sequences
                      (a new encoder/decoder pair). <fields> is "name=value" in hex,
                      ";"-separated, with a trailing "!" for never-indexed fields.
  check-hpack         read the same format (encoded by spindle) on stdin, decode each
                      block with hpack and compare; exit 1 on any mismatch.
  gen-frames SEED N   print N frames serialized by hyperframe: "<hex>\t<canonical>".
  check-frames        read "<hex>\t<canonical>" (encoded by spindle) on stdin, parse with
                      hyperframe and compare canonical forms; exit 1 on any mismatch.
"""
import random
import sys

import hpack
import hyperframe.frame as hf

NAMES = [
    "accept", "accept-encoding", "accept-language", "user-agent", "cookie",
    "authorization", "content-type", "cache-control", "referer", "x-request-id",
    ":method", ":path", ":authority", ":scheme", "set-cookie", "if-none-match",
]


def rand_value(rng):
    n = rng.choice([0, 1, 3, 8, 20, 60, 200])
    alphabet = [c for c in range(0x20, 0x7F)] + [0x09, 0x80, 0xE9, 0xFF]
    return bytes(rng.choice(alphabet) for _ in range(n))


def rand_name(rng):
    if rng.random() < 0.7:
        return rng.choice(NAMES).encode()
    n = rng.randint(1, 25)
    return bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz0123456789-_") for _ in range(n))


def fields_str(headers):
    out = []
    for h in headers:
        n, v = h[0], h[1]
        if isinstance(n, str):
            n = n.encode()
        if isinstance(v, str):
            v = v.encode()
        s = n.hex() + "=" + v.hex()
        if isinstance(h, hpack.NeverIndexedHeaderTuple):
            s += "!"
        out.append(s)
    return ";".join(out)


def parse_fields(s):
    out = []
    if not s:
        return out
    for item in s.split(";"):
        never = item.endswith("!")
        item = item.rstrip("!")
        n, v = item.split("=")
        out.append((bytes.fromhex(n), bytes.fromhex(v), never))
    return out


def gen_hpack(seed, n):
    rng = random.Random(seed)
    enc = None
    for i in range(n):
        if enc is None or rng.random() < 0.1:
            if enc is not None:
                print("RESET")
            enc = hpack.Encoder()
            # hpack's own decoder says what went on the wire: a sensitive field that fully
            # matches a table entry is sent indexed by hpack's encoder.
            check = hpack.Decoder()
        if rng.random() < 0.05:
            enc.header_table_size = rng.choice([0, 256, 1024, 4096])
        headers = []
        for _ in range(rng.randint(0, 15)):
            name, value = rand_name(rng), rand_value(rng)
            if rng.random() < 0.15:
                headers.append(hpack.NeverIndexedHeaderTuple(name, value))
            else:
                headers.append((name, value))
        block = enc.encode(headers, huffman=rng.random() < 0.6)
        wire = check.decode(block, raw=True)
        assert [(bytes(h[0]), bytes(h[1])) for h in wire] == [(bytes(h[0]), bytes(h[1])) for h in headers]
        print(block.hex() + "\t" + fields_str(wire))


def check_hpack():
    dec = hpack.Decoder()
    bad = 0
    count = 0
    for line in sys.stdin:
        line = line.rstrip("\n")
        if line == "RESET":
            dec = hpack.Decoder()
            continue
        block_hex, fields = line.split("\t")
        want = parse_fields(fields)
        got = dec.decode(bytes.fromhex(block_hex), raw=True)
        got = [(bytes(h[0]), bytes(h[1]), isinstance(h, hpack.NeverIndexedHeaderTuple)) for h in got]
        count += 1
        if got != want:
            bad += 1
            print(f"MISMATCH block {block_hex}\n  want {want}\n  got  {got}", file=sys.stderr)
    print(f"checked {count} blocks, {bad} mismatches")
    sys.exit(1 if bad or count == 0 else 0)


def canon(f):
    """Canonical one-line description; tests/h2_python_interop.rs prints the same."""
    pad = lambda: str(f.pad_length) if "PADDED" in f.flags else "-"
    flag = lambda name: "1" if name in f.flags else "0"
    if isinstance(f, hf.DataFrame):
        return f"DATA s={f.stream_id} es={flag('END_STREAM')} pad={pad()} data={bytes(f.data).hex()}"
    if isinstance(f, hf.HeadersFrame):
        prio = f"{f.depends_on},{int(f.exclusive)},{f.stream_weight}" if "PRIORITY" in f.flags else "-"
        return (f"HEADERS s={f.stream_id} es={flag('END_STREAM')} eh={flag('END_HEADERS')} "
                f"pad={pad()} prio={prio} frag={bytes(f.data).hex()}")
    if isinstance(f, hf.PriorityFrame):
        return f"PRIORITY s={f.stream_id} prio={f.depends_on},{int(f.exclusive)},{f.stream_weight}"
    if isinstance(f, hf.RstStreamFrame):
        return f"RST_STREAM s={f.stream_id} code={f.error_code}"
    if isinstance(f, hf.SettingsFrame):
        pairs = ",".join(f"{k}:{v}" for k, v in sorted(f.settings.items()))
        return f"SETTINGS ack={flag('ACK')} {pairs}"
    if isinstance(f, hf.PushPromiseFrame):
        return (f"PUSH_PROMISE s={f.stream_id} promised={f.promised_stream_id} eh={flag('END_HEADERS')} "
                f"pad={pad()} frag={bytes(f.data).hex()}")
    if isinstance(f, hf.PingFrame):
        return f"PING ack={flag('ACK')} data={bytes(f.opaque_data).hex()}"
    if isinstance(f, hf.GoAwayFrame):
        return f"GOAWAY last={f.last_stream_id} code={f.error_code} debug={bytes(f.additional_data).hex()}"
    if isinstance(f, hf.WindowUpdateFrame):
        return f"WINDOW_UPDATE s={f.stream_id} inc={f.window_increment}"
    if isinstance(f, hf.ContinuationFrame):
        return f"CONTINUATION s={f.stream_id} eh={flag('END_HEADERS')} frag={bytes(f.data).hex()}"
    raise ValueError(f"unexpected frame {f!r}")


def rand_frame(rng):
    sid = rng.randint(1, 2**31 - 1)
    data = bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 1, 10, 100])))
    kind = rng.randrange(10)

    def maybe_pad(f):
        if rng.random() < 0.4:
            f.flags.add("PADDED")
            f.pad_length = rng.randint(0, 255)

    def maybe(f, flag):
        if rng.random() < 0.5:
            f.flags.add(flag)

    def prio(f):
        f.depends_on = rng.choice([0, rng.randint(1, 2**31 - 1)])
        if f.depends_on == f.stream_id:
            f.depends_on = 0
        f.exclusive = rng.random() < 0.5
        f.stream_weight = rng.randint(0, 255)

    if kind == 0:
        f = hf.DataFrame(sid, data)
        maybe(f, "END_STREAM")
        maybe_pad(f)
    elif kind == 1:
        f = hf.HeadersFrame(sid, data)
        maybe(f, "END_STREAM")
        maybe(f, "END_HEADERS")
        maybe_pad(f)
        if rng.random() < 0.5:
            f.flags.add("PRIORITY")
            prio(f)
    elif kind == 2:
        f = hf.PriorityFrame(sid)
        prio(f)
    elif kind == 3:
        f = hf.RstStreamFrame(sid, error_code=rng.choice([0, 1, 8, 13, 0xDEAD]))
    elif kind == 4:
        if rng.random() < 0.2:
            f = hf.SettingsFrame(0, flags=["ACK"])
        else:
            s = {}
            for _ in range(rng.randint(0, 6)):
                k = rng.choice([1, 2, 3, 4, 5, 6, 8, 0x42])
                s[k] = {2: rng.randint(0, 1), 8: rng.randint(0, 1), 4: rng.randint(0, 2**31 - 1),
                        5: rng.randint(2**14, 2**24 - 1)}.get(k, rng.randint(0, 2**32 - 1))
            f = hf.SettingsFrame(0, settings=s)
    elif kind == 5:
        f = hf.PushPromiseFrame(sid, promised_stream_id=rng.randint(1, 2**31 - 1), data=data)
        maybe(f, "END_HEADERS")
        maybe_pad(f)
    elif kind == 6:
        f = hf.PingFrame(0, opaque_data=bytes(rng.getrandbits(8) for _ in range(8)))
        maybe(f, "ACK")
    elif kind == 7:
        f = hf.GoAwayFrame(0, last_stream_id=rng.randint(0, 2**31 - 1),
                           error_code=rng.choice([0, 1, 2, 11, 0x1234]), additional_data=data)
    elif kind == 8:
        f = hf.WindowUpdateFrame(rng.choice([0, sid]), window_increment=rng.randint(1, 2**31 - 1))
    else:
        f = hf.ContinuationFrame(sid, data)
        maybe(f, "END_HEADERS")
    return f


def gen_frames(seed, n):
    rng = random.Random(seed)
    for _ in range(n):
        f = rand_frame(rng)
        print(f.serialize().hex() + "\t" + canon(f))


def check_frames():
    bad = 0
    count = 0
    for line in sys.stdin:
        hexs, want = line.rstrip("\n").split("\t")
        b = bytes.fromhex(hexs)
        f, length = hf.Frame.parse_frame_header(memoryview(b[:9]))
        f.parse_body(memoryview(b[9:9 + length]))
        got = canon(f)
        count += 1
        if got != want or len(b) != 9 + length:
            bad += 1
            print(f"MISMATCH {hexs}\n  want {want}\n  got  {got}", file=sys.stderr)
    print(f"checked {count} frames, {bad} mismatches")
    sys.exit(1 if bad or count == 0 else 0)


def main():
    mode = sys.argv[1]
    if mode == "gen-hpack":
        gen_hpack(int(sys.argv[2]), int(sys.argv[3]))
    elif mode == "check-hpack":
        check_hpack()
    elif mode == "gen-frames":
        gen_frames(int(sys.argv[2]), int(sys.argv[3]))
    elif mode == "check-frames":
        check_frames()
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
