//! Publishing to the dead-letter queue in confirm mode. A work message is acked only after
//! every dead letter it produced is confirmed, so a crash at any instant leaves each record
//! stored, on the DLQ, or still queued — never gone.

use std::sync::Arc;

use common::{
    dead_letter::{DeadLetterInfo, dead_header},
    message::{CONTENT_TYPE, PAGE_FORMAT_VERSION, PAGE_MESSAGE_TYPE, PageMessage},
    topology,
};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection,
    options::{BasicPublishOptions, ConfirmSelectOptions},
    types::ShortString,
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

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Dead letters for the failed records of a page: one one-record page each.
pub fn for_records(
    page: &Page<'_>,
    failed: &[FailedRecord],
    source_message_id: &str,
    original_index: Option<i64>,
    attempts: i64,
) -> Vec<DeadLetter> {
    let failed_at = now();
    failed
        .iter()
        .map(|f| {
            let raw: &RawValue = page.records[f.index];
            let record_index = original_index.unwrap_or(f.index as i64);
            // Same kind and delete mode as the page, so a replay does what the page would have.
            let body = serde_json::to_vec(&PageMessage {
                format: PAGE_FORMAT_VERSION,
                object: page.object.clone(),
                run_id: page.run_id,
                page: page.page,
                kind: page.kind,
                hard_delete: page.hard_delete,
                force: page.force,
                table: page.table.clone(),
                records: [raw],
            })
            .unwrap_or_default();
            DeadLetter {
                message_id: format!("{}/{}/{record_index}", page.run_id, page.page),
                body,
                message_type: Some(PAGE_MESSAGE_TYPE.into()),
                info: DeadLetterInfo {
                    object: Some(page.object.clone()),
                    run_id: Some(page.run_id.to_string()),
                    page: Some(page.page as i64),
                    record_index: Some(record_index),
                    sfid: f.sfid.clone(),
                    error_class: Some(f.class.as_str().into()),
                    error: Some(f.message.clone()),
                    failed_at: Some(failed_at.clone()),
                    attempts,
                    source_message_id: Some(source_message_id.into()),
                },
            }
        })
        .collect()
}

/// A dead letter for a whole message that is not an sfsync page: its body as it came.
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
            error_class: Some(class.as_str().into()),
            error: Some(error.into()),
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
}

struct PublisherState {
    connection: Arc<Connection>,
    channel: Option<Channel>,
}

impl DeadLetterPublisher {
    pub fn new(connection: Arc<Connection>) -> Self {
        Self {
            state: Mutex::new(PublisherState {
                connection,
                channel: None,
            }),
        }
    }

    /// Moves to a new connection after the consumer reconnected. Letters being sent on the old
    /// one fail, so their pages are not acked and come again.
    pub async fn use_connection(&self, connection: Arc<Connection>) {
        let mut state = self.state.lock().await;
        state.connection = connection;
        state.channel = None;
    }

    async fn channel(&self) -> Result<Channel, String> {
        let mut state = self.state.lock().await;
        if let Some(ch) = state.channel.as_ref().filter(|c| c.status().connected()) {
            return Ok(ch.clone());
        }
        let ch = state
            .connection
            .create_channel()
            .await
            .map_err(|e| format!("opening the dead-letter channel: {e}"))?;
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| format!("confirm mode on the dead-letter channel: {e}"))?;
        state.channel = Some(ch.clone());
        Ok(ch)
    }

    /// Publishes every letter and waits until the broker confirmed all of them.
    ///
    /// # Errors
    /// Any letter not confirmed (nack, unroutable, channel or connection failure): the caller
    /// must then not ack the work message.
    pub async fn send(&self, letters: &[DeadLetter]) -> Result<(), String> {
        if letters.is_empty() {
            return Ok(());
        }
        let channel = self.channel().await?;
        let mut confirms = Vec::with_capacity(letters.len());
        for letter in letters {
            let mut properties = BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type(ShortString::from(CONTENT_TYPE))
                .with_message_id(ShortString::from(letter.message_id.as_str()))
                .with_app_id(ShortString::from("sfsync-worker"))
                .with_headers(letter.info.to_headers());
            if let Some(t) = &letter.message_type {
                properties = properties.with_type(ShortString::from(t.as_str()));
            }
            let confirm = channel
                .basic_publish(
                    ShortString::from(topology::DEAD_EXCHANGE),
                    ShortString::from(""),
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    &letter.body,
                    properties,
                )
                .await
                .map_err(|e| format!("publishing a dead letter: {e}"))?;
            confirms.push(confirm);
        }
        for confirm in confirms {
            match confirm
                .await
                .map_err(|e| format!("waiting for a dead-letter confirm: {e}"))?
            {
                Confirmation::Ack(None) => {}
                Confirmation::Ack(Some(_)) => {
                    return Err(format!(
                        "dead letter unroutable: no queue bound to {}",
                        topology::DEAD_EXCHANGE
                    ));
                }
                Confirmation::Nack(_) => {
                    return Err("the broker refused a dead letter (nack)".into());
                }
                Confirmation::NotRequested => {
                    return Err("dead-letter channel not in confirm mode".into());
                }
            }
        }
        Ok(())
    }
}

/// Reads the attempt count and original record index of a replayed record.
pub fn replay_of(headers: Option<&lapin::types::FieldTable>) -> Option<(i64, i64)> {
    let headers = headers?;
    headers.inner().get(dead_header::REPLAY)?;
    let index = headers
        .inner()
        .get(dead_header::RECORD_INDEX)
        .and_then(common::dead_letter::int)?;
    let attempts = headers
        .inner()
        .get(dead_header::ATTEMPTS)
        .and_then(common::dead_letter::int)
        .unwrap_or(1);
    Some((index, attempts))
}
