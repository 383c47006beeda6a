//! A message as one row, and back. Every field is checked on the way back in: a row is only
//! ever written by this crate, but the file is the user's.

use std::time::Duration;

use im_proto::{Body, Delivery, Json, OutgoingMessage, SendId};

use crate::{StoreError, Stored};

const JSON: i64 = 0;
const TEXT: i64 = 1;
const BINARY: i64 = 2;

const AT_MOST_ONCE: i64 = 0;
const AT_LEAST_ONCE: i64 = 1;

pub(crate) struct Row {
    pub id: i64,
    pub key: String,
    pub channel: String,
    pub kind: i64,
    pub body: Vec<u8>,
    pub ttl_ms: Option<i64>,
    pub delivery: Option<i64>,
    pub retain: bool,
}

/// SQLite's integers are signed: an id past `i64::MAX` is refused, not wrapped.
pub(crate) fn sql_id(id: SendId) -> Result<i64, StoreError> {
    i64::try_from(id.0).map_err(|_| StoreError::OutOfRange { id })
}

impl Row {
    pub fn of(id: SendId, key: &str, message: &OutgoingMessage) -> Result<Row, StoreError> {
        let (kind, body) = match &message.body {
            Body::Json(json) => (JSON, json.get().as_bytes().to_vec()),
            Body::Text(text) => (TEXT, text.as_bytes().to_vec()),
            Body::Binary(bytes) => (BINARY, bytes.to_vec()),
            _ => {
                return Err(StoreError::Unsupported {
                    id,
                    what: "a kind of body this version does not know",
                })
            }
        };
        let ttl_ms = message
            .ttl
            .map(|ttl| i64::try_from(ttl.as_millis()).map_err(|_| StoreError::OutOfRange { id }))
            .transpose()?;
        let delivery = match message.delivery {
            None => None,
            Some(Delivery::AtMostOnce) => Some(AT_MOST_ONCE),
            Some(_) => Some(AT_LEAST_ONCE),
        };
        Ok(Row {
            id: sql_id(id)?,
            key: key.to_owned(),
            channel: message.channel.clone(),
            kind,
            body,
            ttl_ms,
            delivery,
            retain: message.retain,
        })
    }

    pub fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
        Ok(Row {
            id: row.get(0)?,
            key: row.get(1)?,
            channel: row.get(2)?,
            kind: row.get(3)?,
            body: row.get(4)?,
            ttl_ms: row.get(5)?,
            delivery: row.get(6)?,
            retain: row.get(7)?,
        })
    }

    pub fn into_stored(self) -> Result<Stored, StoreError> {
        let id = self.id;
        let corrupt = |what: String| StoreError::Corrupt { id, what };
        let send_id = u64::try_from(id).map_err(|_| corrupt("a negative id".into()))?;
        let body = match self.kind {
            JSON => {
                let text = String::from_utf8(self.body)
                    .map_err(|e| corrupt(format!("a JSON body that is not UTF-8: {e}")))?;
                Body::Json(
                    Json::parse(text)
                        .map_err(|e| corrupt(format!("a JSON body that is not JSON: {e}")))?,
                )
            }
            TEXT => Body::Text(
                String::from_utf8(self.body)
                    .map_err(|e| corrupt(format!("a text body that is not UTF-8: {e}")))?
                    .into(),
            ),
            BINARY => Body::Binary(self.body.into()),
            other => return Err(corrupt(format!("an unknown body kind {other}"))),
        };
        let mut message = OutgoingMessage::new(self.channel, body);
        message.ttl = match self.ttl_ms {
            None => None,
            Some(ms) => Some(Duration::from_millis(
                u64::try_from(ms).map_err(|_| corrupt(format!("a negative TTL {ms}")))?,
            )),
        };
        message.delivery = match self.delivery {
            None => None,
            Some(AT_MOST_ONCE) => Some(Delivery::AtMostOnce),
            Some(AT_LEAST_ONCE) => Some(Delivery::AtLeastOnce),
            Some(other) => return Err(corrupt(format!("an unknown delivery {other}"))),
        };
        message.retain = self.retain;
        message.key = Some(self.key.clone());
        Ok(Stored {
            id: SendId(send_id),
            key: self.key,
            message,
        })
    }
}
