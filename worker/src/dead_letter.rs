//! Publishing to the dead-letter queue in confirm mode. A work message is acked only after
//! every dead letter it produced is confirmed, so a crash at any instant leaves each record
//! stored, on the DLQ, or still queued — never gone.

use std::{sync::Arc, time::Duration};

use common::{
    amqp::BlockWatch,
    confirm::{ConfirmError, Patience},
    dead_letter::{Attempts, DeadLetterInfo, RecordIndex},
    message::{CONTENT_TYPE, PAGE_FORMAT_VERSION, PAGE_MESSAGE_TYPE, PageMessage},
    topology,
};
use lapin::{
    BasicProperties, Channel, Connection, options::ConfirmSelectOptions, types::ShortString,
};
use serde_json::value::RawValue;
use tokio::sync::Mutex;

use crate::{decode::Page, error::ErrorClass, store::FailedRecord};

/// One message for the dead-letter queue.
pub struct DeadLetter {
    pub message_id: String,
    pub body: Vec<u8>,
    pub info: DeadLetterInfo,
    pub message_type: Option<String>,
}

/// Why dead letters do not count as sent; the work message they came from must then not be
/// acked.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    /// No channel could be opened on the broker connection.
    #[error("opening the dead-letter channel: {0}")]
    Channel(#[source] lapin::Error),
    /// The channel refused confirm mode.
    #[error("putting the dead-letter channel in confirm mode: {0}")]
    ConfirmMode(#[source] lapin::Error),
    /// Opening the channel or its confirm mode got no answer in time.
    #[error("the broker did not open the dead-letter channel within {0:?}")]
    ChannelTimedOut(Duration),
    /// A letter was not confirmed (refused, unroutable, connection lost, or no answer in time).
    #[error("dead letter {message_id}: {source}")]
    Unconfirmed {
        message_id: String,
        #[source]
        source: ConfirmError,
    },
}

impl DeadLetterError {
    /// Whether the connection was still up when the letters failed, so that trying again on it
    /// may work (a refused or unanswered confirm); after a closed channel or connection the
    /// page is redelivered anyway.
    pub fn connection_alive(&self) -> bool {
        matches!(
            self,
            DeadLetterError::Unconfirmed {
                source: ConfirmError::Nacked
                    | ConfirmError::TimedOut(_)
                    | ConfirmError::Unroutable { .. },
                ..
            }
        )
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Dead letters for the failed records of a page: one one-record page each. `replay` is the
/// original record index of a replayed record (its letter keeps the index it was first
/// dead-lettered under).
pub fn for_records(
    page: &Page<'_>,
    failed: &[FailedRecord],
    source_message_id: &str,
    replay: Option<RecordIndex>,
    attempts: Attempts,
) -> Vec<DeadLetter> {
    let failed_at = now();
    failed
        .iter()
        .filter_map(|f| {
            let raw: &RawValue = crate::store::raw_record(page, f.index)?;
            let record_index = replay.unwrap_or(f.index);
            // Same kind, delete mode and stamp field as the page, so a replay does what the
            // page would have.
            let body = serde_json::to_vec(&PageMessage {
                format: PAGE_FORMAT_VERSION,
                object: page.object.clone(),
                run_id: page.run_id,
                page: page.page,
                kind: page.kind,
                hard_delete: page.hard_delete,
                force: page.force,
                table: page.table.clone(),
                stamp: page.stamp.clone(),
                records: [raw],
            })
            .unwrap_or_default();
            Some(DeadLetter {
                message_id: format!("{}/{}/{record_index}", page.run_id, page.page),
                body,
                message_type: Some(PAGE_MESSAGE_TYPE.into()),
                info: DeadLetterInfo {
                    object: Some(page.object.clone()),
                    run_id: Some(page.run_id.to_string()),
                    page: Some(page.page as i64),
                    record_index: Some(record_index),
                    sfid: f.sfid.clone(),
                    error_class: Some(f.class),
                    error: Some(f.message.clone()),
                    failed_at: Some(failed_at.clone()),
                    attempts,
                    source_message_id: Some(source_message_id.into()),
                },
            })
        })
        .collect()
}

/// A dead letter for a whole message that cannot be handled as a page: its body as it came.
pub fn for_message(
    body: &[u8],
    message_type: Option<&str>,
    source_message_id: &str,
    class: ErrorClass,
    error: &str,
) -> DeadLetter {
    DeadLetter {
        message_id: format!("undecodable/{source_message_id}"),
        body: body.to_vec(),
        message_type: message_type.map(str::to_owned),
        info: DeadLetterInfo {
            error_class: Some(class),
            error: Some(error.into()),
            failed_at: Some(now()),
            attempts: 1,
            source_message_id: Some(source_message_id.into()),
            ..Default::default()
        },
    }
}

/// A dead letter for a change Salesforce refused: a push batch of that one record, so that
/// `producer dlq replay` puts it back on the push queue and a worker applies it again with the
/// row's values as they are then.
pub fn for_push(
    batch: &common::push::PushBatch,
    failure: &crate::push::RecordFailure,
    source_message_id: &str,
) -> DeadLetter {
    let record = batch.records.iter().find(|r| r.row_id == failure.row_id);
    let single = common::push::PushBatch {
        records: record.into_iter().cloned().collect(),
        ..batch.clone()
    };
    let error = &failure.error;
    DeadLetter {
        message_id: format!("{}/{}", batch.batch_id, failure.row_id),
        body: serde_json::to_vec(&single).unwrap_or_default(),
        message_type: Some(common::push::MESSAGE_TYPE.into()),
        info: DeadLetterInfo {
            object: Some(batch.object.clone()),
            run_id: Some(batch.batch_id.to_string()),
            sfid: record.and_then(|r| r.sfid.clone()),
            error_class: Some(ErrorClass::Salesforce),
            error: Some(format!(
                "{}: {} (fields: {}; row id {} of salesforce.{})",
                error.status_code,
                error.message,
                error.fields.join(", "),
                failure.row_id,
                batch.table
            )),
            failed_at: Some(now()),
            attempts: 1,
            source_message_id: Some(source_message_id.into()),
            ..Default::default()
        },
    }
}

/// The dead letter of a local change a pull found in conflict with Salesforce (the `reject`
/// policy): a push batch of the one record, as [`for_push`] makes for a refused change, so that
/// `producer dlq replay` sends it to the push queue.
pub fn for_conflict(conflict: &crate::store::Conflict, source_message_id: &str) -> DeadLetter {
    let batch = &conflict.batch;
    let record = batch.records.first();
    DeadLetter {
        message_id: format!(
            "{}/{}",
            batch.batch_id,
            record.map(|r| r.row_id).unwrap_or_default()
        ),
        body: serde_json::to_vec(batch).unwrap_or_default(),
        message_type: Some(common::push::MESSAGE_TYPE.into()),
        info: DeadLetterInfo {
            object: Some(batch.object.clone()),
            run_id: Some(batch.batch_id.to_string()),
            sfid: record.and_then(|r| r.sfid.clone()),
            error_class: Some(ErrorClass::Conflict),
            error: Some(format!(
                "{} (row id {} of salesforce.{})",
                conflict.message,
                record.map(|r| r.row_id).unwrap_or_default(),
                batch.table
            )),
            failed_at: Some(now()),
            attempts: 1,
            source_message_id: Some(source_message_id.into()),
            ..Default::default()
        },
    }
}

/// A confirm-mode channel to the dead-letter exchange, reopened if it breaks, on whichever
/// connection the consumer currently uses.
pub struct DeadLetterPublisher {
    state: Mutex<PublisherState>,
    /// How long one letter's publish and confirm may take (`--confirm-timeout`).
    confirm_timeout: Duration,
}

struct PublisherState {
    connection: Arc<Connection>,
    /// Whether the broker blocks `connection`: the confirm timeout does not run meanwhile.
    blocked: BlockWatch,
    channel: Option<Channel>,
}

impl DeadLetterPublisher {
    pub fn new(
        connection: Arc<Connection>,
        blocked: BlockWatch,
        confirm_timeout: Duration,
    ) -> Self {
        Self {
            state: Mutex::new(PublisherState {
                connection,
                blocked,
                channel: None,
            }),
            confirm_timeout,
        }
    }

    /// Moves to a new connection after the consumer reconnected. Letters being sent on the old
    /// one fail, so their pages are not acked and come again.
    pub async fn use_connection(&self, connection: Arc<Connection>, blocked: BlockWatch) {
        let mut state = self.state.lock().await;
        state.connection = connection;
        state.blocked = blocked;
        state.channel = None;
    }

    /// The channel to publish on, and how long a publish or confirm may take on it.
    async fn channel(&self) -> Result<(Channel, Patience), DeadLetterError> {
        let mut state = self.state.lock().await;
        let patience = Patience::new(self.confirm_timeout, state.blocked.clone());
        if let Some(ch) = state.channel.as_ref().filter(|c| c.status().connected()) {
            return Ok((ch.clone(), patience));
        }
        // Bounded like the confirms: a stalled connection never answers channel.open either.
        let open = async {
            let ch = state
                .connection
                .create_channel()
                .await
                .map_err(DeadLetterError::Channel)?;
            ch.confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(DeadLetterError::ConfirmMode)?;
            Ok(ch)
        };
        let ch = tokio::time::timeout(self.confirm_timeout, open)
            .await
            .map_err(|_| DeadLetterError::ChannelTimedOut(self.confirm_timeout))??;
        state.channel = Some(ch.clone());
        Ok((ch, patience))
    }

    /// Publishes every letter and waits until the broker confirmed all of them, each within
    /// the confirm timeout.
    ///
    /// # Errors
    /// Any letter not confirmed (nack, unroutable, channel or connection failure, no answer in
    /// time): the caller must then not ack the work message.
    pub async fn send(&self, letters: &[DeadLetter]) -> Result<(), DeadLetterError> {
        if letters.is_empty() {
            return Ok(());
        }
        let (channel, patience) = self.channel().await?;
        let mut pending = Vec::with_capacity(letters.len());
        for letter in letters {
            let unconfirmed = |source| DeadLetterError::Unconfirmed {
                message_id: letter.message_id.clone(),
                source,
            };
            let mut properties = BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type(ShortString::from(CONTENT_TYPE))
                .with_message_id(ShortString::from(letter.message_id.as_str()))
                .with_app_id(ShortString::from("sfsync-worker"))
                .with_headers(letter.info.to_headers());
            if let Some(t) = &letter.message_type {
                properties = properties.with_type(ShortString::from(t.as_str()));
            }
            let confirm = common::confirm::publish(
                &channel,
                topology::DEAD_EXCHANGE,
                "",
                &letter.body,
                properties,
                patience.clone(),
            )
            .await
            .map_err(unconfirmed)?;
            pending.push((letter, confirm));
        }
        for (letter, confirm) in pending {
            confirm.wait(patience.clone()).await.map_err(|source| {
                DeadLetterError::Unconfirmed {
                    message_id: letter.message_id.clone(),
                    source,
                }
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_keeps_the_stamp_field_of_its_page() {
        let body = br#"{"format":1,"object":"AccountHistory","run_id":"00000000-0000-0000-0000-000000000000","page":4,"stamp":"CreatedDate","records":[
            {"Id":"017000000000001AAA","CreatedDate":"2024-01-01T00:00:00.000+0000"}]}"#;
        let page = crate::decode::decode(None, body).unwrap();
        let failed = FailedRecord {
            index: 0,
            sfid: Some("017000000000001AAA".into()),
            class: ErrorClass::Mapping,
            message: "refused".into(),
        };
        let letters = for_records(&page, &[failed], "m", None, 1);
        let replayed = crate::decode::decode(None, &letters[0].body).unwrap();
        assert_eq!(replayed.stamp_field(), Some("CreatedDate"));
        assert_eq!(replayed.page, 4);
    }
}
