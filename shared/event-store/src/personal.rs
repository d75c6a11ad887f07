//! Crypto-shredding: personal data in events (the fields `domain::personal` names) is stored
//! encrypted (AES-256-GCM) with a key of its subject, the stream the event belongs to, kept
//! outside the log in `personal_data_keys`. Erasure destroys the key; the log, which refuses
//! every UPDATE and DELETE, is left as it is, and what it holds can no longer be read.
//!
//! Appending seals each personal field as `{"sealed": "<base64 of nonce || ciphertext>"}`;
//! every read path (tailing, loading aggregates) reveals it again while the key exists and
//! shows `domain::personal::ERASED` once it is gone. The ciphertext is bound to its subject,
//! event type and field (the associated data), so it cannot be moved to another event.
//!
//! Events written before encryption existed hold their personal fields in clear text. They are
//! read as they are until their subject is forgotten; from then on readers see `ERASED` for them
//! too (the key row stays as a tombstone with no key), but the clear text itself stays in the
//! event table, which cannot be changed: erasure of such legacy events is not possible.

use std::collections::HashMap;

use aes_gcm::{
    Aes256Gcm, Key, Nonce,
    aead::{Aead, AeadCore, KeyInit, OsRng, Payload},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use domain::personal::{ERASED, personal_fields};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::StoreError;

/// The JSON key of a sealed field's envelope.
const SEALED: &str = "sealed";
const NONCE_BYTES: usize = 12;

/// One event's data as a reader or writer holds it, with whose personal data it carries.
pub(crate) struct PersonalData<'a> {
    pub subject: Uuid,
    pub event_type: &'a str,
    pub data: &'a mut Value,
}

/// What the keys table says of a subject: its key, or that it was forgotten.
enum SubjectKey {
    Key(Vec<u8>),
    Forgotten,
}

/// The events that have personal fields, and their subjects (sorted, each once); `None` when
/// no event has any.
fn with_personal_fields(
    events: Vec<PersonalData<'_>>,
) -> Option<(Vec<PersonalData<'_>>, Vec<Uuid>)> {
    let events: Vec<_> = events
        .into_iter()
        .filter(|event| !personal_fields(event.event_type).is_empty())
        .collect();
    if events.is_empty() {
        return None;
    }
    let mut subjects: Vec<Uuid> = events.iter().map(|event| event.subject).collect();
    subjects.sort_unstable();
    subjects.dedup();
    Some((events, subjects))
}

/// Encrypts the personal fields of events about to be appended, creating their subjects' keys
/// as needed, in the caller's transaction. A forgotten subject's new personal data is written
/// as `ERASED`.
pub(crate) async fn seal(
    conn: &mut PgConnection,
    events: Vec<PersonalData<'_>>,
) -> Result<(), StoreError> {
    let Some((events, subjects)) = with_personal_fields(events) else {
        return Ok(());
    };
    let fresh: Vec<Vec<u8>> = subjects
        .iter()
        .map(|_| Aes256Gcm::generate_key(OsRng).to_vec())
        .collect();
    // Two first writes for one subject: the second waits on the first's row and keeps it.
    sqlx::query(
        "INSERT INTO personal_data_keys (subject, key)
         SELECT * FROM UNNEST($1::uuid[], $2::bytea[])
         ON CONFLICT (subject) DO NOTHING",
    )
    .bind(&subjects)
    .bind(&fresh)
    .execute(&mut *conn)
    .await?;
    let keys = keys_of(conn, &subjects).await?;
    for event in events {
        for field in personal_fields(event.event_type) {
            let Some(value) = event.data.get_mut(*field) else {
                continue;
            };
            *value = match keys.get(&event.subject) {
                Some(SubjectKey::Key(key)) => {
                    sealed(key, event.subject, event.event_type, field, value)?
                }
                Some(SubjectKey::Forgotten) | None => Value::from(ERASED),
            };
        }
    }
    Ok(())
}

/// Replaces the personal fields of an event's data with `ERASED` without reading any key: for
/// readers that need only the other facts of an event (whether a customer exists), so that
/// they pay no round trip for a key they would not use.
pub(crate) fn withhold(event_type: &str, data: &mut Value) {
    for field in personal_fields(event_type) {
        if let Some(value) = data.get_mut(*field) {
            *value = Value::from(ERASED);
        }
    }
}

/// Decrypts the personal fields of events read from the log, or shows them as `ERASED` when
/// their subject was forgotten. Reads the keys table only when an event has personal fields.
pub(crate) async fn reveal(
    conn: &mut PgConnection,
    events: Vec<PersonalData<'_>>,
) -> Result<(), StoreError> {
    let Some((events, subjects)) = with_personal_fields(events) else {
        return Ok(());
    };
    let keys = keys_of(conn, &subjects).await?;
    for event in events {
        for field in personal_fields(event.event_type) {
            let Some(value) = event.data.get_mut(*field) else {
                continue;
            };
            let envelope = value
                .as_object()
                .filter(|object| object.len() == 1)
                .and_then(|object| object.get(SEALED))
                .and_then(Value::as_str);
            *value = match (envelope, keys.get(&event.subject)) {
                (Some(envelope), Some(SubjectKey::Key(key))) => {
                    opened(key, event.subject, event.event_type, field, envelope)?
                }
                (Some(_), _) | (None, Some(SubjectKey::Forgotten)) => Value::from(ERASED),
                // Written in clear before encryption existed, and not forgotten.
                (None, _) => continue,
            };
        }
    }
    Ok(())
}

/// Destroys the subject's key (leaving a tombstone, so legacy clear-text fields read as
/// erased too) and the copies of its state the write side keeps: snapshots, and the stored
/// requests and responses of its commands' idempotency keys. Idempotent.
pub async fn forget(conn: &mut PgConnection, subject: Uuid) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO personal_data_keys (subject, key, forgotten_at) VALUES ($1, NULL, now())
         ON CONFLICT (subject) DO UPDATE
         SET key = NULL, forgotten_at = coalesce(personal_data_keys.forgotten_at, now())",
    )
    .bind(subject)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM snapshots WHERE stream_id = $1")
        .bind(subject)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM idempotency_keys WHERE response -> 'body' ->> 'id' = $1::text")
        .bind(subject)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// `reveal` for events read from the log.
pub(crate) async fn reveal_recorded(
    conn: &mut PgConnection,
    events: &mut [crate::RecordedEvent],
) -> Result<(), StoreError> {
    let personal = events
        .iter_mut()
        .map(|event| PersonalData {
            subject: event.stream_id,
            event_type: &event.event_type,
            data: &mut event.data,
        })
        .collect();
    reveal(conn, personal).await
}

async fn keys_of(
    conn: &mut PgConnection,
    subjects: &[Uuid],
) -> Result<HashMap<Uuid, SubjectKey>, StoreError> {
    let rows: Vec<(Uuid, Option<Vec<u8>>)> =
        sqlx::query_as("SELECT subject, key FROM personal_data_keys WHERE subject = ANY($1)")
            .bind(subjects)
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(subject, key)| (subject, key.map_or(SubjectKey::Forgotten, SubjectKey::Key)))
        .collect())
}

/// Binds a ciphertext to where it belongs.
fn associated_data(subject: Uuid, event_type: &str, field: &str) -> Vec<u8> {
    let mut aad = subject.as_bytes().to_vec();
    aad.extend_from_slice(event_type.as_bytes());
    aad.push(0);
    aad.extend_from_slice(field.as_bytes());
    aad
}

fn cipher(key: &[u8]) -> Result<Aes256Gcm, StoreError> {
    if key.len() != 32 {
        return Err(StoreError::Corrupt(format!(
            "a personal-data key has {} bytes, not 32",
            key.len()
        )));
    }
    Ok(Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)))
}

fn sealed(
    key: &[u8],
    subject: Uuid,
    event_type: &str,
    field: &str,
    value: &Value,
) -> Result<Value, StoreError> {
    let plaintext =
        serde_json::to_vec(value).map_err(|error| StoreError::Corrupt(error.to_string()))?;
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let aad = associated_data(subject, event_type, field);
    let ciphertext = cipher(key)?
        .encrypt(
            &nonce,
            Payload {
                msg: &plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| StoreError::Corrupt(format!("cannot encrypt {event_type}.{field}")))?;
    let mut envelope = nonce.to_vec();
    envelope.extend_from_slice(&ciphertext);
    Ok(serde_json::json!({ SEALED: STANDARD.encode(envelope) }))
}

fn opened(
    key: &[u8],
    subject: Uuid,
    event_type: &str,
    field: &str,
    envelope: &str,
) -> Result<Value, StoreError> {
    let corrupt = || {
        StoreError::Corrupt(format!(
            "the sealed {event_type}.{field} of {subject} does not open with its key"
        ))
    };
    let bytes = STANDARD.decode(envelope).map_err(|_| corrupt())?;
    if bytes.len() < NONCE_BYTES {
        return Err(corrupt());
    }
    let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
    let aad = associated_data(subject, event_type, field);
    let plaintext = cipher(key)?
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: &aad,
            },
        )
        .map_err(|_| corrupt())?;
    serde_json::from_slice(&plaintext).map_err(|_| corrupt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_field_opens_only_with_its_key_where_it_was_sealed() {
        let key = Aes256Gcm::generate_key(OsRng).to_vec();
        let subject = Uuid::new_v4();
        let value = Value::from("Ada Lovelace");
        let envelope = sealed(&key, subject, "CustomerRegistered", "name", &value).expect("sealed");
        assert!(!envelope.to_string().contains("Ada"));
        let text = envelope[SEALED].as_str().expect("envelope");
        assert_eq!(
            opened(&key, subject, "CustomerRegistered", "name", text).expect("opened"),
            value
        );
        let other_key = Aes256Gcm::generate_key(OsRng).to_vec();
        assert!(opened(&other_key, subject, "CustomerRegistered", "name", text).is_err());
        assert!(opened(&key, Uuid::new_v4(), "CustomerRegistered", "name", text).is_err());
        assert!(opened(&key, subject, "CustomerRegistered", "sku", text).is_err());
    }
}
