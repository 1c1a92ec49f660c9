//! PRIORITY frames (RFC 9113 §6.3) and the priority fields of HEADERS.
use super::head::write_head;
use super::*;

/// The deprecated RFC 7540 priority fields: dependency, exclusive flag and weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PrioritySpec {
    /// The stream this one depends on.
    pub dependency: StreamId,
    /// The exclusive flag (the high bit of the dependency field).
    pub exclusive: bool,
    /// The weight field as sent (0..=255, meaning a weight of 1..=256).
    pub weight: u8,
}

impl PrioritySpec {
    pub(crate) fn parse(b: &[u8]) -> PrioritySpec {
        let raw = read_u32(b);
        PrioritySpec {
            dependency: StreamId::new(raw),
            exclusive: raw & 0x8000_0000 != 0,
            weight: b[4],
        }
    }

    pub(crate) fn encode(&self, dst: &mut Vec<u8>) {
        let mut raw = self.dependency.value();
        if self.exclusive {
            raw |= 0x8000_0000;
        }
        dst.extend_from_slice(&raw.to_be_bytes());
        dst.push(self.weight);
    }
}

/// A PRIORITY frame. RFC 9113 deprecates its meaning but still requires its checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Priority {
    /// The stream (never 0).
    pub stream_id: StreamId,
    /// The priority fields.
    pub spec: PrioritySpec,
}

impl Priority {
    pub(crate) fn decode(head: &FrameHead, payload: &[u8]) -> Result<Priority, H2Error> {
        require_stream(head)?;
        if payload.len() != 5 {
            return Err(H2Error::stream(
                head.stream_id,
                Reason::FrameSizeError,
                Violation::BadLength,
            ));
        }
        let spec = PrioritySpec::parse(payload);
        if spec.dependency == head.stream_id {
            return Err(H2Error::stream(
                head.stream_id,
                Reason::ProtocolError,
                Violation::SelfDependency,
            ));
        }
        Ok(Priority {
            stream_id: head.stream_id,
            spec,
        })
    }

    /// Append the frame to `dst`.
    pub fn encode(&self, dst: &mut Vec<u8>) {
        write_head(dst, 5, FrameType::Priority, 0, self.stream_id);
        self.spec.encode(dst);
    }
}
