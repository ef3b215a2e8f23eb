//! The organization mode is chosen once: the first boot pins it, later boots must agree.

use super::{Store, StoreError, on_tx};

const PIN: &str =
    "INSERT INTO organization_mode (id, mode, created_at_ms) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING";
const READ: &str = "SELECT mode FROM organization_mode WHERE id = 1";

impl Store {
    /// Pins `mode` if nothing is pinned yet and returns the pinned mode.
    pub async fn pin_org_mode(&self, mode: &str, now_ms: i64) -> Result<String, StoreError> {
        let mut tx = self.begin().await?;
        on_tx!(&mut tx, c => sqlx::query(PIN).bind(mode).bind(now_ms).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        let pinned: String = on_tx!(&mut tx, c => sqlx::query_scalar(READ).fetch_one(&mut *c).await)?;
        tx.commit().await?;
        Ok(pinned)
    }
}
