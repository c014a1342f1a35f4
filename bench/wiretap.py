"""bench/wiretap.py -- Socket Mode ack latency as the loopback interface sees it.

The fake Slack records an ack's latency from inside a Python process: its event loop, the
websockets library and the GIL it shares with its control threads add their own delays
(about 1 ms at p99 under the bench's load), the same for every bot. WireTap takes the
times from the kernel instead: a packet socket on "lo" (needs CAP_NET_RAW) sees each TCP
segment as it is sent, with the kernel's timestamp (SO_TIMESTAMPNS). The TCP streams of
the watched WebSocket ports are put back together, their frames parsed (RFC 6455: masks,
lengths, continuation; permessage-deflate, RFC 7692, as the handshake negotiated it), and
each envelope_id gets two times: the segment that completed the fake's envelope frame, and
the one that completed the bot's ack frame. latency(envelope_id) is their difference.

Nothing is guessed: a stream whose bytes went missing (a gap in the sequence numbers, the
socket's buffer overflowed) stops being read and is counted in `lost`; a bench then says
the figures are incomplete. Without CAP_NET_RAW, WireTap() raises PermissionError."""
import re
import socket
import struct
import threading
import time
import zlib

ETH_P_ALL = 0x0003
ETH_P_IP = b"\x08\x00"
PACKET_OUTGOING = 4
SO_TIMESTAMPNS = 35
SO_RCVBUFFORCE = 33
SOL_PACKET = 263
PACKET_STATISTICS = 6
TCP_SYN, TCP_RST = 0x02, 0x04
SEQ_MASK = 0xFFFFFFFF
ENV_ID = re.compile(rb'"envelope_id"\s*:\s*"([^"\\]{1,128})"')
HEAD_MAX = 16384


class _Dir:
    """One direction of one TCP connection: bytes in order, then WebSocket frames."""

    def __init__(self, seq):
        self.next_seq = (seq + 1) & SEQ_MASK
        self.buf = bytearray()
        self.head = True          # the HTTP upgrade comes first
        self.lost = False
        self.inflate = None       # a decompressobj when permessage-deflate is on
        self.no_takeover = False  # a fresh window per message
        self.msg = None           # a fragmented message: [compressed, bytes]


class WireTap:
    def __init__(self):
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
            except OSError:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
            self.sock.bind(("lo", 0))
            self.sock.settimeout(0.2)
        except BaseException:
            self.sock.close()
            raise
        self.ports = set()
        self.sent, self.acked = {}, {}
        self.conns = {}           # (server port, client port) -> [down _Dir, up _Dir]
        self.lost = 0
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def watch(self, port):
        """Follow the WebSocket server on 127.0.0.1:port (before any client connects)."""
        with self.lock:
            self.ports.add(port)

    def latency(self, envelope_id):
        """Seconds from the envelope's frame to its ack's frame on the wire, or None."""
        with self.lock:
            s, a = self.sent.get(envelope_id), self.acked.get(envelope_id)
        return a - s if s is not None and a is not None and a >= s else None

    def dropped(self):
        """Packets the kernel dropped for want of room in the socket's buffer."""
        try:
            _, drops = struct.unpack("II", self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
            return drops
        except OSError:
            return 0

    def close(self):
        self.stopping = True
        self.thread.join(2)
        self.sock.close()

    # ---- packets ---------------------------------------------------------------------

    def _run(self):
        while not self.stopping:
            try:
                data, anc, _, addr = self.sock.recvmsg(70000, 64)
            except socket.timeout:
                continue
            except OSError:
                return
            if addr[2] != PACKET_OUTGOING:  # each segment once: as its sender sent it
                continue
            ts = None
            for level, kind, raw in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= 16:
                    sec, nsec = struct.unpack_from("qq", raw)
                    ts = sec + nsec / 1e9
            with self.lock:
                self._segment(data, ts if ts is not None else time.time())

    def _segment(self, d, ts):
        if len(d) < 34 or d[12:14] != ETH_P_IP or d[23] != 6:
            return
        ihl = (d[14] & 0x0F) * 4
        total = struct.unpack_from("!H", d, 16)[0]
        t = 14 + ihl
        if len(d) < t + 20:
            return
        sport, dport, seq = struct.unpack_from("!HHI", d, t)
        flags = d[t + 13]
        if sport in self.ports:
            key, side = (sport, dport), 0
        elif dport in self.ports:
            key, side = (dport, sport), 1
        else:
            return
        if flags & TCP_SYN:
            pair = self.conns.setdefault(key, [None, None])
            pair[side] = _Dir(seq)
            return
        pair = self.conns.get(key)
        st = pair[side] if pair else None
        if st is None or st.lost or flags & TCP_RST:
            return
        payload = d[t + (d[t + 12] >> 4) * 4:14 + total]
        if not payload:
            return
        ahead = (seq - st.next_seq) & SEQ_MASK
        if ahead >= 1 << 31:  # a retransmission: skip what was already taken
            behind = (st.next_seq - seq) & SEQ_MASK
            if behind >= len(payload):
                return
            payload = payload[behind:]
        elif ahead:
            st.lost = True
            self.lost += 1
            return
        st.next_seq = (st.next_seq + len(payload)) & SEQ_MASK
        st.buf += payload
        try:
            self._frames(pair, side, ts)
        except (ValueError, zlib.error):
            st.lost = True
            self.lost += 1

    # ---- HTTP upgrade and WebSocket frames -------------------------------------------

    def _frames(self, pair, side, ts):
        st = pair[side]
        if st.head:
            end = st.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(st.buf) > HEAD_MAX:
                    raise ValueError("no end of the HTTP head")
                return
            head = bytes(st.buf[:end]).lower()
            del st.buf[:end + 4]
            st.head = False
            if side == 0:  # the server's answer says what both sides compress
                self._negotiated(pair, head)
        while len(st.buf) >= 2:
            b0, b1 = st.buf[0], st.buf[1]
            n, h = b1 & 0x7F, 2
            if n == 126:
                if len(st.buf) < 4:
                    return
                n, h = struct.unpack_from("!H", st.buf, 2)[0], 4
            elif n == 127:
                if len(st.buf) < 10:
                    return
                n, h = struct.unpack_from("!Q", st.buf, 2)[0], 10
            mask = None
            if b1 & 0x80:
                if len(st.buf) < h + 4:
                    return
                mask, h = bytes(st.buf[h:h + 4]), h + 4
            if len(st.buf) < h + n:
                return
            body = bytes(st.buf[h:h + n])
            del st.buf[:h + n]
            if mask:
                k = (mask * (n // 4 + 1))[:n]
                body = (int.from_bytes(body, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")
            op = b0 & 0x0F
            if op >= 8:  # control frames: ping, pong, close
                continue
            if op != 0:
                st.msg = [bool(b0 & 0x40), bytearray()]
            if st.msg is None:
                raise ValueError("continuation without a first frame")
            st.msg[1] += body
            if b0 & 0x80:  # FIN: the message is whole at this segment's time
                self._message(st, side, st.msg[0], bytes(st.msg[1]), ts)
                st.msg = None

    def _negotiated(self, pair, head):
        ext = b""
        for line in head.split(b"\r\n"):
            if line.startswith(b"sec-websocket-extensions:"):
                ext += line.split(b":", 1)[1] + b";"
        if b"permessage-deflate" not in ext:
            return
        for side, word in ((0, b"server_no_context_takeover"), (1, b"client_no_context_takeover")):
            if pair[side] is not None:
                pair[side].inflate = zlib.decompressobj(-15)
                pair[side].no_takeover = word in ext

    def _message(self, st, side, compressed, body, ts):
        if compressed:
            if st.inflate is None:
                raise ValueError("a compressed message without permessage-deflate")
            if st.no_takeover:
                st.inflate = zlib.decompressobj(-15)
            body = st.inflate.decompress(body + b"\x00\x00\xff\xff")
        m = ENV_ID.search(body, 0, 512)
        if not m:
            return
        eid = m.group(1).decode("ascii", "replace")
        seen = self.sent if side == 0 else self.acked
        seen.setdefault(eid, ts)
