//! Deterministic fake orders: what the order service answers.

use profile_contract::Order;
use service_kit::user_id::mix;

const ITEMS: [(&str, u64); 8] = [
    ("mechanical keyboard", 8900),
    ("usb-c cable", 1299),
    ("standing desk", 42900),
    ("noise-cancelling headphones", 24900),
    ("monitor arm", 6900),
    ("ergonomic mouse", 4900),
    ("desk lamp", 3900),
    ("laptop stand", 2900),
];

/// The same user always has the same 0 to 4 orders.
pub fn fake_orders(user_id: u64) -> Vec<Order> {
    let seed = mix(user_id ^ 0x6f72_6465_7273);
    let count = seed % 5;
    (0..count)
        .map(|n| {
            let r = mix(seed.wrapping_add(n));
            let (item, price) = ITEMS[(r % ITEMS.len() as u64) as usize];
            let quantity = 1 + ((r >> 8) % 3) as u32;
            Order {
                order_id: format!("ord-{user_id}-{}", n + 1),
                user_id,
                item: item.to_owned(),
                quantity,
                total_cents: price * u64::from(quantity),
            }
        })
        .collect()
}
