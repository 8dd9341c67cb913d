//! Randomized campaigns (placeholder until the suite lands).

use crate::CampaignOpts;

pub fn campaign(_o: &CampaignOpts) -> u8 {
    1
}

pub fn compare_policies(_iterations: u64, _seed: u64) -> u8 {
    1
}
