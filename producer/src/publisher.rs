//! Publishes page messages in confirm mode with a bounded window of outstanding confirms:
//! waiting for each confirm in turn gives ~700 messages/s, a window gives 10k+/s (see
//! `docs/architecture.md`). A page counts as published only when the broker acked it *and* it
//! was routed to a queue ([`common::confirm`]).

use std::{future::Future, pin::Pin, time::Duration};

use chrono::{DateTime, Utc};
use common::{
    confirm::{ConfirmError, Patience},
    message::{CONTENT_TYPE, PAGE_MESSAGE_TYPE, header, page_message_id},
    metrics::Gauge,
    topology,
};
use futures::{FutureExt, StreamExt, stream::FuturesOrdered};
use lapin::{
    BasicProperties, Channel,
    options::ConfirmSelectOptions,
    types::{AMQPValue, FieldTable, LongString, ShortString},
};
use uuid::Uuid;

use crate::broker::BrokerChannel;

/// A page the broker has confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Confirmed {
    pub page: u64,
    /// The slice of the run's stamp window the page belongs to (0 when not read in slices).
    pub slice: usize,
    pub records: u64,
    /// SystemModstamp of the page's last record, when the page is in stamp order.
    pub last_stamp: Option<DateTime<Utc>>,
}

/// A page that does not count as published, and why.
#[derive(Debug, thiserror::Error)]
#[error("page {page} was not published: {source}")]
pub struct PublishError {
    pub page: u64,
    #[source]
    pub source: ConfirmError,
}

/// How long a confirm may take before the page counts as not published. Confirms normally
/// take milliseconds; time the broker blocks publishing (a resource alarm) does not count.
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(120);

type ConfirmFuture = Pin<Box<dyn Future<Output = Result<Confirmed, PublishError>> + Send>>;

/// Publishes pages of one run and reports them back as they are confirmed, in page order.
pub struct PagePublisher {
    channel: Channel,
    /// How long a publish or a confirm may take, paused while the broker blocks the
    /// connection.
    patience: Patience,
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
    /// The slice of the run's stamp window the page belongs to (0 when not read in slices).
    pub slice: usize,
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
    pub async fn new(channel: BrokerChannel, window: usize) -> lapin::Result<Self> {
        let BrokerChannel { channel, blocked } = channel;
        let patience = Patience::new(CONFIRM_TIMEOUT, blocked);
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Self {
            channel,
            patience,
            in_flight: FuturesOrdered::new(),
            window: window.max(1),
            gauge: None,
        })
    }

    /// Gives each publish and confirm `timeout` instead of [`CONFIRM_TIMEOUT`].
    pub fn with_confirm_timeout(mut self, timeout: Duration) -> Self {
        self.patience = self.patience.clone().with_limit(timeout);
        self
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
        let (number, slice, records, last_stamp) =
            (page.page, page.slice, page.records, page.last_stamp);
        let failed = move |source| PublishError {
            page: number,
            source,
        };
        let pending = common::confirm::publish(
            &self.channel,
            topology::EXCHANGE,
            topology::ROUTING_KEY,
            &page.body,
            properties,
            self.patience.clone(),
        )
        .await
        .map_err(failed)?;
        let patience = self.patience.clone();
        self.in_flight.push_back(Box::pin(async move {
            pending.wait(patience).await.map_err(failed)?;
            Ok(Confirmed {
                page: number,
                slice,
                records,
                last_stamp,
            })
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
