//! MQTT 3.1.1 control packets: the subset a QoS 0/1 client needs, encoded and decoded without
//! IO. Decoding is incremental: a WebSocket frame may carry several packets or part of one.

use std::fmt;

use bytes::Bytes;

use crate::text::{self, Text};

/// A packet this client sends or understands.
#[derive(Clone, PartialEq, Eq)]
pub enum Packet {
    Connect {
        client_id: String,
        keep_alive: u16,
        clean_session: bool,
        username: Option<String>,
        password: Option<Vec<u8>>,
    },
    ConnAck {
        session_present: bool,
        code: u8,
    },
    Publish {
        dup: bool,
        qos: u8,
        retain: bool,
        /// Short topics are kept inline, long ones share the frame (see [`Text`]).
        topic: Text,
        packet_id: Option<u16>,
        /// Shared with the frame it was decoded from by [`Packet::decode_shared`].
        payload: Bytes,
    },
    PubAck {
        packet_id: u16,
    },
    Subscribe {
        packet_id: u16,
        topics: Vec<(String, u8)>,
    },
    SubAck {
        packet_id: u16,
        codes: Vec<u8>,
    },
    Unsubscribe {
        packet_id: u16,
        topics: Vec<String>,
    },
    UnsubAck {
        packet_id: u16,
    },
    PingReq,
    PingResp,
    Disconnect,
}

impl fmt::Debug for Packet {
    // Passwords and payloads stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Packet::Connect {
                client_id,
                keep_alive,
                ..
            } => write!(f, "Connect({client_id:?}, keep_alive {keep_alive})"),
            Packet::Publish {
                qos,
                dup,
                topic,
                packet_id,
                payload,
                ..
            } => write!(
                f,
                "Publish({topic:?}, qos {qos}, dup {dup}, id {packet_id:?}, {} bytes)",
                payload.len()
            ),
            Packet::ConnAck { code, .. } => write!(f, "ConnAck({code})"),
            Packet::PubAck { packet_id } => write!(f, "PubAck({packet_id})"),
            Packet::Subscribe { packet_id, topics } => {
                write!(f, "Subscribe({packet_id}, {topics:?})")
            }
            Packet::SubAck { packet_id, codes } => write!(f, "SubAck({packet_id}, {codes:?})"),
            Packet::Unsubscribe { packet_id, topics } => {
                write!(f, "Unsubscribe({packet_id}, {topics:?})")
            }
            Packet::UnsubAck { packet_id } => write!(f, "UnsubAck({packet_id})"),
            Packet::PingReq => f.write_str("PingReq"),
            Packet::PingResp => f.write_str("PingResp"),
            Packet::Disconnect => f.write_str("Disconnect"),
        }
    }
}

/// Bytes that are not a valid MQTT 3.1.1 packet.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    #[error("remaining length is malformed")]
    Length,
    #[error("packet of {size} bytes exceeds the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("packet type {0} is not supported")]
    Unsupported(u8),
    #[error("invalid flags {flags:#x} for packet type {kind}")]
    Flags { kind: u8, flags: u8 },
    #[error("packet truncated or overlong")]
    Shape,
    #[error("string is not valid UTF-8")]
    Utf8,
    #[error("invalid QoS {0}")]
    Qos(u8),
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u16(out, s.len() as u16);
    out.extend_from_slice(s.as_bytes());
}

fn put_length(out: &mut Vec<u8>, mut len: usize) {
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            break;
        }
    }
}

/// A PUBLISH's fixed fields, for encoding one straight from the caller's topic and payload:
/// the client's send path, which builds no [`Packet`] and copies each byte once.
#[derive(Clone, Copy, Debug)]
pub struct Publish {
    pub dup: bool,
    pub qos: u8,
    pub retain: bool,
    pub packet_id: Option<u16>,
}

impl Publish {
    /// Append the PUBLISH of `payload` on `topic` to `out`.
    pub fn encode(self, out: &mut Vec<u8>, topic: &str, payload: &[u8]) {
        let len = 2 + topic.len() + if self.packet_id.is_some() { 2 } else { 0 } + payload.len();
        out.reserve(5 + len);
        out.push(0x30 | (u8::from(self.dup) << 3) | (self.qos << 1) | u8::from(self.retain));
        put_length(out, len);
        put_str(out, topic);
        if let Some(id) = self.packet_id {
            put_u16(out, id);
        }
        out.extend_from_slice(payload);
    }
}

/// The largest remaining length MQTT can express (four length bytes).
pub const MAX_REMAINING: usize = 268_435_455;

impl Packet {
    /// Append the encoded packet to `out`. Strings longer than 65,535 bytes are the caller's
    /// to refuse (the protocol validates topics before encoding).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut body = Vec::new();
        let header = match self {
            Packet::Connect {
                client_id,
                keep_alive,
                clean_session,
                username,
                password,
            } => {
                put_str(&mut body, "MQTT");
                body.push(4);
                let mut flags = 0u8;
                if *clean_session {
                    flags |= 0x02;
                }
                if username.is_some() {
                    flags |= 0x80;
                }
                if password.is_some() {
                    flags |= 0x40;
                }
                body.push(flags);
                put_u16(&mut body, *keep_alive);
                put_str(&mut body, client_id);
                if let Some(u) = username {
                    put_str(&mut body, u);
                }
                if let Some(p) = password {
                    put_u16(&mut body, p.len() as u16);
                    body.extend_from_slice(p);
                }
                0x10
            }
            Packet::ConnAck {
                session_present,
                code,
            } => {
                body.push(u8::from(*session_present));
                body.push(*code);
                0x20
            }
            Packet::Publish {
                dup,
                qos,
                retain,
                topic,
                packet_id,
                payload,
            } => {
                let header = Publish {
                    dup: *dup,
                    qos: *qos,
                    retain: *retain,
                    packet_id: *packet_id,
                };
                return header.encode(out, topic, payload);
            }
            Packet::PubAck { packet_id } => {
                put_u16(&mut body, *packet_id);
                0x40
            }
            Packet::Subscribe { packet_id, topics } => {
                put_u16(&mut body, *packet_id);
                for (t, q) in topics {
                    put_str(&mut body, t);
                    body.push(*q);
                }
                0x82
            }
            Packet::SubAck { packet_id, codes } => {
                put_u16(&mut body, *packet_id);
                body.extend_from_slice(codes);
                0x90
            }
            Packet::Unsubscribe { packet_id, topics } => {
                put_u16(&mut body, *packet_id);
                for t in topics {
                    put_str(&mut body, t);
                }
                0xa2
            }
            Packet::UnsubAck { packet_id } => {
                put_u16(&mut body, *packet_id);
                0xb0
            }
            Packet::PingReq => 0xc0,
            Packet::PingResp => 0xd0,
            Packet::Disconnect => 0xe0,
        };
        out.push(header);
        put_length(out, body.len());
        out.extend_from_slice(&body);
    }

    /// Decode one packet from the front of `buf`: `Ok(None)` if more bytes are needed,
    /// `Ok(Some((packet, used)))` otherwise. Packets above `limit` bytes are refused. A
    /// PUBLISH's payload is copied out of `buf`; [`decode_shared`](Self::decode_shared) shares it.
    pub fn decode(buf: &[u8], limit: usize) -> Result<Option<(Packet, usize)>, CodecError> {
        Self::decode_with(buf, limit, Bytes::copy_from_slice)
    }

    /// [`decode`](Self::decode), the packet sharing `buf` instead of copying from it: a PUBLISH's
    /// payload and long topic are slices of it (what the client does with every frame).
    pub fn decode_shared(buf: &Bytes, limit: usize) -> Result<Option<(Packet, usize)>, CodecError> {
        Self::decode_with(buf, limit, |part| buf.slice_ref(part))
    }

    fn decode_with(
        buf: &[u8],
        limit: usize,
        share: impl Fn(&[u8]) -> Bytes,
    ) -> Result<Option<(Packet, usize)>, CodecError> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        let (mut len, mut mult, mut i) = (0usize, 1usize, 1usize);
        loop {
            let Some(&b) = buf.get(i) else {
                return Ok(None);
            };
            len += usize::from(b & 0x7f) * mult;
            i += 1;
            if b & 0x80 == 0 {
                break;
            }
            mult *= 128;
            if i > 4 {
                return Err(CodecError::Length);
            }
        }
        if len + i > limit {
            return Err(CodecError::TooLarge {
                size: len + i,
                limit,
            });
        }
        if buf.len() < i + len {
            return Ok(None);
        }
        let body = &buf[i..i + len];
        let (kind, flags) = (first >> 4, first & 0x0f);
        let expect_flags = |want: u8| {
            if flags == want {
                Ok(())
            } else {
                Err(CodecError::Flags { kind, flags })
            }
        };
        let mut r = Reader { buf: body };
        let packet = match kind {
            1 => {
                expect_flags(0)?;
                if r.string()? != "MQTT" || r.u8()? != 4 {
                    return Err(CodecError::Shape);
                }
                let cflags = r.u8()?;
                let keep_alive = r.u16()?;
                let client_id = r.string()?;
                let username = (cflags & 0x80 != 0).then(|| r.string()).transpose()?;
                let password = (cflags & 0x40 != 0).then(|| r.bytes()).transpose()?;
                Packet::Connect {
                    client_id,
                    keep_alive,
                    clean_session: cflags & 0x02 != 0,
                    username,
                    password,
                }
            }
            2 => {
                expect_flags(0)?;
                Packet::ConnAck {
                    session_present: r.u8()? & 1 != 0,
                    code: r.u8()?,
                }
            }
            3 => {
                let qos = (flags >> 1) & 0x03;
                if qos > 1 {
                    return Err(CodecError::Qos(qos));
                }
                let topic = r.text(&share)?;
                let packet_id = (qos > 0).then(|| r.u16()).transpose()?;
                Packet::Publish {
                    dup: flags & 0x08 != 0,
                    qos,
                    retain: flags & 0x01 != 0,
                    topic,
                    packet_id,
                    payload: share(r.rest()),
                }
            }
            4 => {
                expect_flags(0)?;
                Packet::PubAck {
                    packet_id: r.u16()?,
                }
            }
            8 => {
                expect_flags(2)?;
                let packet_id = r.u16()?;
                let mut topics = Vec::new();
                while !r.buf.is_empty() {
                    topics.push((r.string()?, r.u8()?));
                }
                Packet::Subscribe { packet_id, topics }
            }
            9 => {
                expect_flags(0)?;
                Packet::SubAck {
                    packet_id: r.u16()?,
                    codes: r.rest().to_vec(),
                }
            }
            10 => {
                expect_flags(2)?;
                let packet_id = r.u16()?;
                let mut topics = Vec::new();
                while !r.buf.is_empty() {
                    topics.push(r.string()?);
                }
                Packet::Unsubscribe { packet_id, topics }
            }
            11 => {
                expect_flags(0)?;
                Packet::UnsubAck {
                    packet_id: r.u16()?,
                }
            }
            12 => Packet::PingReq,
            13 => Packet::PingResp,
            14 => Packet::Disconnect,
            other => return Err(CodecError::Unsupported(other)),
        };
        let fixed_size = matches!(
            packet,
            Packet::ConnAck { .. }
                | Packet::PubAck { .. }
                | Packet::UnsubAck { .. }
                | Packet::PingReq
                | Packet::PingResp
                | Packet::Disconnect
        );
        if fixed_size && !r.buf.is_empty() {
            return Err(CodecError::Shape);
        }
        Ok(Some((packet, i + len)))
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], CodecError> {
        if self.buf.len() < n {
            return Err(CodecError::Shape);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, CodecError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn bytes(&mut self) -> Result<Vec<u8>, CodecError> {
        let n = usize::from(self.u16()?);
        Ok(self.take(n)?.to_vec())
    }

    fn string(&mut self) -> Result<String, CodecError> {
        String::from_utf8(self.bytes()?).map_err(|_| CodecError::Utf8)
    }

    /// A string as a [`Text`]: inline when short (a topic, mostly), else shared through `share`.
    fn text(&mut self, share: impl Fn(&[u8]) -> Bytes) -> Result<Text, CodecError> {
        let n = usize::from(self.u16()?);
        let bytes = self.take(n)?;
        let string = std::str::from_utf8(bytes).map_err(|_| CodecError::Utf8)?;
        Ok(match text::inline(string) {
            Some(short) => short,
            None => Text::from_utf8(share(bytes)).map_err(|_| CodecError::Utf8)?,
        })
    }

    fn rest(&mut self) -> &[u8] {
        std::mem::take(&mut self.buf)
    }
}
