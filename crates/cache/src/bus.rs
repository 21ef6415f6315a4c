//! Redis pub/sub: publishing through the pool, subscribing on a dedicated connection.

use futures::{Stream, StreamExt};

use crate::store::{Store, StoreError};

/// Setting up a subscription is bounded like every other Redis call.
async fn bounded<T>(
    fut: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(std::time::Duration::from_millis(1500), fut)
        .await
        .map_err(|_| StoreError::Unavailable("redis timed out".into()))?
}

impl Store {
    /// Publishes `messages` to `channel` (namespaced) in one pipeline, in order.
    pub async fn publish_all(&self, channel: &str, messages: &[String]) -> Result<(), StoreError> {
        let Some(conns) = self.redis_pool() else {
            return Err(StoreError::Unavailable("no redis configured".into()));
        };
        if messages.is_empty() {
            return Ok(());
        }
        let channel = self.key(channel);
        conns
            .bounded(async {
                let mut conn = conns.conn().await?;
                let mut pipe = deadpool_redis::redis::pipe();
                for m in messages {
                    pipe.cmd("PUBLISH").arg(&channel).arg(m).ignore();
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
        let Some(client) = self.redis_client() else {
            return Err(StoreError::Unavailable("no redis configured".into()));
        };
        let channel = self.key(channel);
        let mut pubsub = bounded(async { Ok(client.get_async_pubsub().await?) }).await?;
        bounded(async { Ok(pubsub.subscribe(&channel).await?) }).await?;
        Ok(pubsub
            .into_on_message()
            .map(|msg| msg.get_payload::<Vec<u8>>().unwrap_or_default()))
    }
}
