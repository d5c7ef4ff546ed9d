//! Publishes page messages in confirm mode with a bounded window of outstanding confirms:
//! waiting for each confirm in turn gives ~700 messages/s, a window gives 10k+/s
//! (reliability.md §1.2). A page counts as published only when the broker acked it *and* it was
//! routed to a queue.

use std::{future::Future, pin::Pin};

use chrono::{DateTime, Utc};
use common::metrics::Gauge;
use common::{
    message::{CONTENT_TYPE, PAGE_MESSAGE_TYPE, header, page_message_id},
    topology,
};
use futures::{FutureExt, StreamExt, stream::FuturesOrdered};
use lapin::{
    BasicProperties, Channel, Confirmation,
    options::{BasicPublishOptions, ConfirmSelectOptions},
    types::{AMQPValue, FieldTable, LongString, ShortString},
};
use uuid::Uuid;

/// A page the broker has confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Confirmed {
    pub page: u64,
    pub records: u64,
    /// SystemModstamp of the page's last record, when the page is in stamp order.
    pub last_stamp: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("publishing page {page} failed: {source}")]
    Broker { page: u64, source: lapin::Error },
    #[error("the broker refused page {page} (basic.nack); it was not stored")]
    Nacked { page: u64 },
    #[error(
        "page {page} was returned as unroutable ({reply}): no queue is bound to exchange {exchange:?}; was the topology deleted?"
    )]
    Unroutable {
        page: u64,
        reply: String,
        exchange: &'static str,
    },
    #[error("the channel is not in confirm mode, so page {page} cannot be confirmed")]
    NotConfirmed { page: u64 },
    #[error("the broker connection closed before page {page} was confirmed")]
    Closed { page: u64 },
    #[error("page {page} was not confirmed within {0:?}", CONFIRM_TIMEOUT)]
    Unconfirmed { page: u64 },
}

/// How long a confirm may take before the page counts as not published. Confirms normally
/// take milliseconds; a broker under a resource alarm can stall publishers for longer.
pub const CONFIRM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

type ConfirmFuture = Pin<Box<dyn Future<Output = Result<Confirmed, PublishError>> + Send>>;

/// Publishes pages of one run and reports them back as they are confirmed, in page order.
pub struct PagePublisher {
    channel: Channel,
    in_flight: FuturesOrdered<ConfirmFuture>,
    window: usize,
    /// `sfsync_pages_in_flight`, kept equal to `in_flight.len()` when set.
    gauge: Option<Gauge>,
}

/// One page ready to publish: the message body and what the headers say about it.
pub struct OutgoingPage {
    pub object: String,
    pub run_id: Uuid,
    pub page: u64,
    pub records: u64,
    /// SystemModstamp of the page's last record, when the page is in stamp order.
    pub last_stamp: Option<DateTime<Utc>>,
    pub body: Vec<u8>,
}

impl PagePublisher {
    /// Puts the channel in confirm mode.
    ///
    /// # Errors
    /// The broker refused `confirm.select`.
    pub async fn new(channel: Channel, window: usize) -> lapin::Result<Self> {
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Self {
            channel,
            in_flight: FuturesOrdered::new(),
            window: window.max(1),
            gauge: None,
        })
    }

    /// Keeps `gauge` at the number of pages awaiting their confirm.
    pub fn with_in_flight_gauge(mut self, gauge: Gauge) -> Self {
        self.gauge = Some(gauge);
        self
    }

    fn track(&self) {
        if let Some(gauge) = &self.gauge {
            gauge.set(self.in_flight.len() as i64);
        }
    }

    /// Publishes a page. When the window is full, first waits for the oldest confirm; returns
    /// the pages confirmed meanwhile.
    ///
    /// # Errors
    /// The broker refused or could not route a page, or the connection failed. Pages not yet
    /// reported as confirmed must be treated as not published.
    pub async fn publish(&mut self, page: &OutgoingPage) -> Result<Vec<Confirmed>, PublishError> {
        let mut confirmed = Vec::new();
        // Collect the confirms that already arrived, so the watermark follows the broker
        // closely instead of trailing it by a whole window.
        while let Some(Some(done)) = self.in_flight.next().now_or_never() {
            confirmed.push(done?);
        }
        while self.in_flight.len() >= self.window {
            if let Some(done) = self.in_flight.next().await {
                confirmed.push(done?);
            }
        }
        self.track();
        let mut headers = FieldTable::default();
        headers.insert(
            header::OBJECT.into(),
            AMQPValue::LongString(LongString::from(page.object.as_str())),
        );
        headers.insert(
            header::RUN_ID.into(),
            AMQPValue::LongString(LongString::from(page.run_id.to_string())),
        );
        headers.insert(
            header::PAGE.into(),
            AMQPValue::LongLongInt(page.page as i64),
        );
        headers.insert(
            header::RECORD_COUNT.into(),
            AMQPValue::LongLongInt(page.records as i64),
        );
        let properties = BasicProperties::default()
            .with_delivery_mode(2) // persistent: survives a broker restart once confirmed
            .with_content_type(ShortString::from(CONTENT_TYPE))
            .with_type(ShortString::from(PAGE_MESSAGE_TYPE))
            .with_message_id(ShortString::from(page_message_id(page.run_id, page.page)))
            .with_app_id(ShortString::from("sfsync-producer"))
            .with_headers(headers);
        // mandatory: an unroutable page comes back instead of being dropped silently.
        let options = BasicPublishOptions {
            mandatory: true,
            ..Default::default()
        };
        let (number, records, last_stamp) = (page.page, page.records, page.last_stamp);
        let confirm = self
            .channel
            .basic_publish(
                ShortString::from(topology::EXCHANGE),
                ShortString::from(topology::ROUTING_KEY),
                options,
                &page.body,
                properties,
            )
            .await
            .map_err(|source| PublishError::Broker {
                page: number,
                source,
            })?;
        let channel = self.channel.clone();
        self.in_flight.push_back(Box::pin(async move {
            // A confirm pending when the connection dies may never resolve: watch the channel,
            // and give up after CONFIRM_TIMEOUT, so the page is reported as not published.
            let deadline = tokio::time::Instant::now() + CONFIRM_TIMEOUT;
            let mut confirm = std::pin::pin!(confirm);
            let answer = loop {
                tokio::select! {
                    answer = &mut confirm => break answer,
                    () = tokio::time::sleep(std::time::Duration::from_millis(500)) => {
                        if !channel.status().connected() {
                            return Err(PublishError::Closed { page: number });
                        }
                        if tokio::time::Instant::now() >= deadline {
                            return Err(PublishError::Unconfirmed { page: number });
                        }
                    }
                }
            };
            match answer.map_err(|source| PublishError::Broker {
                page: number,
                source,
            })? {
                Confirmation::Ack(None) => Ok(Confirmed {
                    page: number,
                    records,
                    last_stamp,
                }),
                Confirmation::Ack(Some(returned)) => Err(PublishError::Unroutable {
                    page: number,
                    reply: returned.reply_text.to_string(),
                    exchange: topology::EXCHANGE,
                }),
                Confirmation::Nack(_) => Err(PublishError::Nacked { page: number }),
                Confirmation::NotRequested => Err(PublishError::NotConfirmed { page: number }),
            }
        }));
        self.track();
        Ok(confirmed)
    }

    /// Waits for every outstanding confirm; returns the pages confirmed.
    ///
    /// # Errors
    /// As for [`publish`](Self::publish).
    pub async fn finish(&mut self) -> Result<Vec<Confirmed>, PublishError> {
        let mut confirmed = Vec::new();
        while let Some(done) = self.in_flight.next().await {
            self.track();
            confirmed.push(done?);
        }
        Ok(confirmed)
    }
}

impl Drop for PagePublisher {
    fn drop(&mut self) {
        // Confirms still pending are abandoned with the publisher (the run failed).
        if let Some(gauge) = &self.gauge {
            gauge.set(0);
        }
    }
}
