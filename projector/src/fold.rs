//! Folding a batch of events into documents loaded from a store. Every document remembers the
//! position of the last event in it, and an event at or below that position is skipped: this is
//! what makes re-applying a batch (after a crash between writing documents and the checkpoint)
//! change nothing.

use std::collections::{HashMap, HashSet};

use domain::{DomainEvent, StreamType};
use event_store::{RecordedEvent, StoreError};
use read_models::EventMeta;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub struct Document<V> {
    pub view: V,
    /// Position of the event that created the document.
    pub first_position: i64,
    /// Position of the last event folded in.
    pub last_position: i64,
}

/// Folds each event of `stream_type` into the document of its stream, in order. Documents that
/// changed are marked in the returned set.
pub fn fold_documents<V, E>(
    documents: &mut HashMap<Uuid, Document<V>>,
    events: &[RecordedEvent],
    stream_type: StreamType,
    fold: impl Fn(Option<V>, &EventMeta, &E) -> Option<V>,
) -> Result<HashSet<Uuid>, StoreError>
where
    E: DomainEvent,
{
    let mut changed = HashSet::new();
    for recorded in events.iter().filter(|e| e.stream_type == stream_type) {
        let id = recorded.stream_id;
        match documents.remove(&id) {
            Some(document) if document.last_position >= recorded.position => {
                documents.insert(id, document);
            }
            existing => {
                let event: E = recorded.decode()?;
                let first_position = existing
                    .as_ref()
                    .map_or(recorded.position, |d| d.first_position);
                let previous = existing.map(|document| document.view);
                let meta = EventMeta {
                    stream_id: recorded.stream_id,
                    version: recorded.stream_version,
                    recorded_at: recorded.recorded_at,
                };
                if let Some(view) = fold(previous, &meta, &event) {
                    documents.insert(
                        id,
                        Document {
                            view,
                            first_position,
                            last_position: recorded.position,
                        },
                    );
                    changed.insert(id);
                }
            }
        }
    }
    Ok(changed)
}

/// The ids of the streams of `stream_type` in a batch, each once.
pub fn stream_ids(events: &[RecordedEvent], stream_type: StreamType) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = events
        .iter()
        .filter(|e| e.stream_type == stream_type)
        .map(|e| e.stream_id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::product::ProductEvent;
    use read_models::ProductView;

    fn recorded(position: i64, version: i64, event: &ProductEvent, id: Uuid) -> RecordedEvent {
        let (event_type, data) = domain::event_to_parts(event);
        RecordedEvent {
            position,
            stream_id: id,
            stream_type: StreamType::Product,
            stream_version: version,
            event_type,
            schema_version: 1,
            data,
            metadata: serde_json::json!({}),
            recorded_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn replaying_a_batch_changes_nothing() {
        let id = Uuid::new_v4();
        let batch = [
            recorded(
                10,
                1,
                &ProductEvent::ProductAdded {
                    sku: "S".into(),
                    name: "N".into(),
                    price_cents: 1,
                    stock: 5,
                },
                id,
            ),
            recorded(20, 2, &ProductEvent::ProductRestocked { quantity: 3 }, id),
        ];
        let mut documents = HashMap::new();
        let changed = fold_documents(
            &mut documents,
            &batch,
            StreamType::Product,
            ProductView::fold,
        )
        .expect("folded");
        assert!(changed.contains(&id));
        let once = documents.clone();
        let changed = fold_documents(
            &mut documents,
            &batch,
            StreamType::Product,
            ProductView::fold,
        )
        .expect("folded");
        assert!(changed.is_empty());
        assert_eq!(documents, once);
        assert_eq!(documents[&id].view.stock_on_hand, 8);
        assert_eq!(
            (documents[&id].first_position, documents[&id].last_position),
            (10, 20)
        );
    }
}
