//! Shared vocabulary of the generators.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Hebei's prefecture-level cities.
pub const HEBEI_CITIES: &[(&str, &str)] = &[
    ("Hebei", "Baoding"),
    ("Hebei", "Shijiazhuang"),
    ("Hebei", "Langfang"),
    ("Hebei", "Tangshan"),
    ("Hebei", "Qinhuangdao"),
    ("Hebei", "Chengde"),
    ("Hebei", "Zhangjiakou"),
    ("Hebei", "Cangzhou"),
    ("Hebei", "Handan"),
    ("Hebei", "Xingtai"),
    ("Hebei", "Hengshui"),
];

/// Other places companies are found in.
pub const OTHER_CITIES: &[(&str, &str)] = &[
    ("Beijing", "Beijing"),
    ("Tianjin", "Tianjin"),
    ("Guizhou", "Guiyang"),
    ("Shandong", "Jinan"),
    ("Jiangsu", "Nanjing"),
    ("Guangdong", "Shenzhen"),
    ("Shanghai", "Shanghai"),
];

/// Sector slugs of synthetic companies.
pub const SECTORS: &[&str] = &[
    "information-technology",
    "software",
    "electronic-information",
    "biotechnology",
    "new-materials",
    "artificial-intelligence",
    "new-energy",
    "high-end-equipment",
];

/// Splits `total` into `n` positive-ish parts that add up exactly.
pub fn split_total(rng: &mut ChaCha8Rng, total: i64, n: usize) -> Vec<i64> {
    if n == 0 {
        return Vec::new();
    }
    let weights: Vec<i64> = (0..n).map(|_| rng.random_range(50..=150)).collect();
    let sum: i64 = weights.iter().sum();
    let mut parts: Vec<i64> = weights
        .iter()
        .map(|w| i64::try_from(i128::from(total) * i128::from(*w) / i128::from(sum)).unwrap_or(0))
        .collect();
    let assigned: i64 = parts.iter().sum();
    if let Some(last) = parts.last_mut() {
        *last += total - assigned;
    }
    parts
}
