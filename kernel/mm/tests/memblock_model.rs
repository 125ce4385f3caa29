//! Property test of memblock against a page bitmap: after random add / reserve / remove / free
//! / alloc calls, the regions are sorted and merged and the free ranges are exactly the pages
//! that are RAM and not reserved.

use mm::Memblock;
use proptest::prelude::*;

const PAGES: u64 = 256;
const PG: u64 = 4096;

#[derive(Clone, Debug)]
enum Op {
    Add(u64, u64),
    Reserve(u64, u64),
    Remove(u64, u64),
    Free(u64, u64),
    Alloc(u64, u32),
}

fn range() -> impl Strategy<Value = (u64, u64)> {
    (0..PAGES, 1..32u64).prop_map(|(s, n)| (s * PG, n.min(PAGES - s) * PG))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => range().prop_map(|(s, n)| Op::Add(s, n)),
        2 => range().prop_map(|(s, n)| Op::Reserve(s, n)),
        1 => range().prop_map(|(s, n)| Op::Remove(s, n)),
        1 => range().prop_map(|(s, n)| Op::Free(s, n)),
        2 => (1..8u64, 0..4u32).prop_map(|(n, a)| Op::Alloc(n * PG, a)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 2 } else { 256 },
        failure_persistence: if cfg!(miri) { None } else { ProptestConfig::default().failure_persistence },
        ..ProptestConfig::default()
    })]

    #[test]
    fn free_ranges_match_a_page_bitmap(ops in proptest::collection::vec(op(), 1..40)) {
        let mut mb = Memblock::new();
        let mut ram = [false; PAGES as usize];
        let mut res = [false; PAGES as usize];
        let pages = |s: u64, n: u64| (s / PG) as usize..((s + n) / PG) as usize;
        for op in ops {
            match op {
                Op::Add(s, n) => { mb.add(s, n).unwrap(); pages(s, n).for_each(|p| ram[p] = true); }
                Op::Reserve(s, n) => { mb.reserve(s, n).unwrap(); pages(s, n).for_each(|p| res[p] = true); }
                Op::Remove(s, n) => { mb.remove(s, n).unwrap(); pages(s, n).for_each(|p| ram[p] = false); }
                Op::Free(s, n) => { mb.free(s, n).unwrap(); pages(s, n).for_each(|p| res[p] = false); }
                Op::Alloc(n, a) => {
                    let align = PG << a;
                    if let Some(base) = mb.alloc(n, align) {
                        prop_assert_eq!(base % align, 0);
                        for p in pages(base, n) {
                            prop_assert!(ram[p] && !res[p], "allocated a page that was not free");
                            res[p] = true;
                        }
                        // Top-down: no free, suitably aligned fit lies higher.
                        let higher = (base / PG + 1..PAGES).any(|p| {
                            (p * PG).is_multiple_of(align)
                                && p + n / PG <= PAGES
                                && (p..p + n / PG).all(|q| ram[q as usize] && !res[q as usize])
                        });
                        prop_assert!(!higher, "a higher fit was skipped");
                    } else {
                        let any = (0..PAGES).any(|p| {
                            (p * PG).is_multiple_of(align)
                                && p + n / PG <= PAGES
                                && (p..p + n / PG).all(|q| ram[q as usize] && !res[q as usize])
                        });
                        prop_assert!(!any, "alloc failed although a fit exists");
                    }
                }
            }
            for t in [mb.memory(), mb.reserved()] {
                for w in t.regions().windows(2) {
                    prop_assert!(w[0].end() < w[1].base, "regions not sorted and merged");
                }
            }
            let mut expect = Vec::new();
            for p in 0..PAGES as usize {
                if ram[p] && !res[p] {
                    match expect.last_mut() {
                        Some((_, e)) if *e == p as u64 * PG => *e += PG,
                        _ => expect.push((p as u64 * PG, (p as u64 + 1) * PG)),
                    }
                }
            }
            let got: Vec<(u64, u64)> = mb.free_ranges().collect();
            prop_assert_eq!(got, expect);
        }
    }
}
