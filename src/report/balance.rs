//! The balance check (SPEC §6): CasaPay's balance per currency beside what is
//! still due to landlords, and `balance_short` where it cannot cover it. A
//! failed balance call is reported as such, never as zero.

use std::collections::BTreeMap;

use serde::Serialize;

use super::DailyReport;
use crate::casapay::client::ApiClient;
use crate::domain::{Currency, ExceptionKind};
use crate::format::money;
use crate::recon::Exception;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BalanceLine {
    pub currency: String,
    pub available: i64,
    pub pending: i64,
    /// Still to pay landlords: due, less paid out and in transit, over the report's periods.
    pub due_to_landlords: i64,
    pub short: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Balance {
    Checked { lines: Vec<BalanceLine> },
    Failed { error: String },
}

/// CasaPay's balance as (currency, available, pending), or why it is unknown.
pub type Fetched = Result<Vec<(String, i64, i64)>, String>;

/// Reads CasaPay's balance.
pub async fn fetch(client: &ApiClient) -> Fetched {
    client.balance().await.map_err(|e| e.to_string())
}

/// Adds the balance check to `report`, with a `balance_short` exception for
/// each currency whose available balance is below what is due.
pub fn check(report: &mut DailyReport, fetched: Fetched) {
    let balance = match fetched {
        Err(error) => Balance::Failed { error },
        Ok(balance) => {
            let mut due: BTreeMap<String, i64> = BTreeMap::new();
            for group in report.periods.iter().flat_map(|p| &p.payouts) {
                let still = (group.due - group.paid_out - group.in_transit).max(0);
                *due.entry(group.currency.code()).or_default() += still;
            }
            let mut lines: Vec<BalanceLine> = balance
                .into_iter()
                .map(|(currency, available, pending)| {
                    let due_to_landlords = due.remove(&currency).unwrap_or(0);
                    BalanceLine {
                        short: available < due_to_landlords,
                        currency,
                        available,
                        pending,
                        due_to_landlords,
                    }
                })
                .collect();
            // A currency owed to landlords with no balance at all is short by all of it.
            lines.extend(
                due.into_iter()
                    .filter(|(_, d)| *d > 0)
                    .map(|(currency, d)| BalanceLine {
                        currency,
                        available: 0,
                        pending: 0,
                        due_to_landlords: d,
                        short: true,
                    }),
            );
            Balance::Checked { lines }
        }
    };
    if let Balance::Checked { lines } = &balance {
        for line in lines.iter().filter(|l| l.short) {
            let currency = Currency::parse(&line.currency).ok();
            let shown = |amount: i64| currency.map_or(amount.to_string(), |c| money(amount, c));
            let mut exception = Exception::about(
                ExceptionKind::BalanceShort,
                format!(
                    "CasaPay holds {} available but {} is still due to landlords",
                    shown(line.available),
                    shown(line.due_to_landlords)
                ),
                Some(line.currency.clone()),
            );
            exception.amount = Some(line.due_to_landlords - line.available);
            exception.currency = currency;
            report.exceptions.push(exception);
        }
    }
    report.balance = Some(balance);
}
