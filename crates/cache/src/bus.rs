//! Redis pub/sub: publishing over the shared command connection, subscribing on a dedicated one.

use futures::{Stream, StreamExt};

use crate::store::{bounded, Store, StoreError};

impl Store {
    /// Publishes `messages` to `channel` (namespaced) in one pipeline, in order.
    pub async fn publish_all(&self, channel: &str, messages: &[String]) -> Result<(), StoreError> {
        let Some(redis) = self.redis_conn() else {
            return Err(StoreError::Unavailable("no redis configured".into()));
        };
        if messages.is_empty() {
            return Ok(());
        }
        let channel = self.key(channel);
        bounded(async {
            let mut conn = redis.conn().await?;
            let mut pipe = redis::pipe();
            for m in messages {
                pipe.publish(&channel, m).ignore();
            }
            let _: () = pipe.query_async(&mut conn).await?;
            Ok(())
        })
        .await
    }

    /// Subscribes to `channel` (namespaced). The stream ends when the connection is lost; the
    /// caller resubscribes and catches up from its durable source.
    pub async fn subscribe(
        &self,
        channel: &str,
    ) -> Result<impl Stream<Item = Vec<u8>> + Send + use<>, StoreError> {
        let Some(redis) = self.redis_conn() else {
            return Err(StoreError::Unavailable("no redis configured".into()));
        };
        let channel = self.key(channel);
        // A subscribed connection cannot carry commands, so each subscription has its own.
        let pubsub = bounded(async {
            let mut pubsub = redis.client().get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok(pubsub)
        })
        .await?;
        Ok(pubsub
            .into_on_message()
            .map(|msg| msg.get_payload::<Vec<u8>>().unwrap_or_default()))
    }
}
