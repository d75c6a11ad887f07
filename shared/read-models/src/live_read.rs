//! A lookup's read: one plain MGET of the live pointer and, in the generation the reader last
//! saw live, the checkpoint, the replay mark and the document. MGET reads its keys atomically,
//! so the checkpoint is one the document is known to reflect (documents are written before the
//! checkpoint moves past them), and the pointer read with them tells whether the guess of the
//! generation was right. A wrong guess (a rebuild switched generations, or the first read of a
//! process) costs one more MGET in the generation the pointer named.

use uuid::Uuid;

use crate::{DocumentKind, RedisKeys};

/// What one `LiveRead` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveDocument {
    /// The document's JSON as stored (`None`: no such thing), and the checkpoint it reflects.
    Read {
        document: Option<Vec<u8>>,
        position: i64,
    },
    /// The generation read is not (or no longer) the live one: read again in this one.
    Moved(i64),
    /// No live generation (Redis lost its data and nothing replays yet), or the document is
    /// missing from a generation that is still replaying the log: it may just not be there yet.
    Unknown,
}

/// The MGET of one lookup, and how to read its answer.
pub struct LiveRead {
    command: redis::Cmd,
    generation: i64,
}

impl LiveRead {
    /// The read of `kind` `id` in `generation` (any number, e.g. 0, when none is known yet).
    pub fn new(keys: &RedisKeys, generation: i64, kind: DocumentKind, id: Uuid) -> Self {
        let mut command = redis::cmd("MGET");
        command
            .arg(keys.live_generation())
            .arg(keys.checkpoint(generation))
            .arg(keys.replay_until(generation))
            .arg(keys.document(generation, kind, id));
        Self {
            command,
            generation,
        }
    }

    pub async fn run(
        &self,
        redis: &mut impl redis::aio::ConnectionLike,
    ) -> redis::RedisResult<LiveDocument> {
        let (live, checkpoint, replay_until, document) = self.command.query_async(redis).await?;
        Ok(self.answer(live, checkpoint, replay_until, document))
    }

    fn answer(
        &self,
        live: Option<i64>,
        checkpoint: Option<i64>,
        replay_until: Option<i64>,
        document: Option<Vec<u8>>,
    ) -> LiveDocument {
        match live {
            None => LiveDocument::Unknown,
            Some(live) if live != self.generation => LiveDocument::Moved(live),
            Some(_) => {
                let position = checkpoint.unwrap_or(0);
                // A generation made because Redis had none is complete once its checkpoint
                // reaches the head the log had when the replay began.
                let complete = replay_until.is_none_or(|until| position >= until);
                if document.is_none() && !complete {
                    LiveDocument::Unknown
                } else {
                    LiveDocument::Read { document, position }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_in(generation: i64) -> LiveRead {
        LiveRead::new(
            &RedisKeys::new("t:"),
            generation,
            DocumentKind::Order,
            Uuid::nil(),
        )
    }

    fn found(document: Option<&[u8]>, position: i64) -> LiveDocument {
        LiveDocument::Read {
            document: document.map(<[u8]>::to_vec),
            position,
        }
    }

    #[test]
    fn a_document_is_answered_with_the_checkpoint_read_beside_it() {
        let answer = read_in(3).answer(Some(3), Some(42), None, Some(b"{}".to_vec()));
        assert_eq!(answer, found(Some(b"{}"), 42));
    }

    #[test]
    fn another_live_generation_asks_for_a_second_read() {
        assert_eq!(
            read_in(3).answer(Some(4), Some(42), None, None),
            LiveDocument::Moved(4)
        );
        assert_eq!(
            read_in(0).answer(Some(1), None, None, None),
            LiveDocument::Moved(1)
        );
    }

    #[test]
    fn a_missing_document_is_unknown_only_while_the_generation_replays() {
        let read = read_in(3);
        assert_eq!(
            read.answer(Some(3), Some(9), Some(10), None),
            LiveDocument::Unknown
        );
        assert_eq!(
            read.answer(Some(3), Some(10), Some(10), None),
            found(None, 10)
        );
        assert_eq!(
            read.answer(Some(3), Some(9), Some(10), Some(b"{}".to_vec())),
            found(Some(b"{}"), 9)
        );
        assert_eq!(read.answer(None, None, None, None), LiveDocument::Unknown);
    }
}
