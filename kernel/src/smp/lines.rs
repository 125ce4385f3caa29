//! Linux 6.1's SMP boot lines, as pure functions of the numbers (checked against
//! Debian's 6.1 kernel booted in the same QEMU with `-smp 4`, with and without
//! two nodes):
//!
//! ```text
//! smp: Bringing up secondary CPUs ...
//! x86: Booting SMP configuration:
//! .... node  #0, CPUs:      #1
//! .... node  #1, CPUs:   #2 #3
//! smp: Brought up 2 nodes, 4 CPUs
//! smpboot: Max logical packages: 1
//! smpboot: Total of 4 processors activated (20769.00 BogoMIPS)
//! ```
//!
//! Linux prints the node lines piece by piece (`pr_cont`), so on a busy console
//! its " #3" can land on a line of its own; here each node's line is whole.
use alloc::format;
use alloc::string::String;

/// Debian's CONFIG_HZ.
pub const HZ: u64 = 250;

/// Decimal digits of `n` (Linux's `num_digits`).
pub fn num_digits(mut n: usize) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

/// `announce_cpu`'s node header: `.... node  #N, CPUs:  ` (padded by the number
/// of possible nodes' digits).
pub fn node_header(node: usize, possible_nodes: usize) -> String {
    let node_width = num_digits(possible_nodes) + 1;
    let pad = node_width.saturating_sub(num_digits(node));
    format!(".... node {:>pad$}#{node}, CPUs:  ", " ", pad = pad.max(1))
}

/// `announce_cpu`'s piece for one CPU: ` #N`, padded by the number of possible
/// CPUs' digits, with the boot CPU's column before CPU 1.
pub fn cpu_piece(cpu: usize, possible_cpus: usize) -> String {
    let width = num_digits(possible_cpus) + 1;
    let mut s = String::new();
    if cpu == 1 {
        s.push_str(&format!("{:>w$}", " ", w = width + 1));
    }
    let pad = width.saturating_sub(num_digits(cpu)).max(1);
    s.push_str(&format!("{:>pad$}#{cpu}", " "));
    s
}

/// `smp: Brought up N node(s), M CPU(s)`.
pub fn brought_up(nodes: usize, cpus: usize) -> String {
    format!(
        "smp: Brought up {nodes} node{}, {cpus} CPU{}",
        if nodes > 1 { "s" } else { "" },
        if cpus > 1 { "s" } else { "" }
    )
}

/// Linux's `loops_per_jiffy` from the TSC (`get_loops_per_jiffy`: tsc_khz * 1000 / HZ),
/// the value `calibrate_delay` takes when it skips the loop.
pub fn lpj_from_tsc(tsc_hz: u64) -> u64 {
    (tsc_hz / 1000) * 1000 / HZ
}

/// `calibrate_delay` when the TSC gave the value: `Calibrating delay loop
/// (skipped), value calculated using timer frequency.. X.YY BogoMIPS (lpj=N)`.
pub fn calibrating(lpj: u64) -> String {
    format!(
        "Calibrating delay loop (skipped), value calculated using timer frequency.. {}.{:02} BogoMIPS (lpj={lpj})",
        lpj / (500_000 / HZ),
        (lpj / (5000 / HZ)) % 100
    )
}

/// `impress_friends`: `smpboot: Total of N processors activated (X.YY BogoMIPS)`
/// from the sum of the online CPUs' loops_per_jiffy.
pub fn total_activated(cpus: usize, bogosum: u64) -> String {
    format!(
        "smpboot: Total of {cpus} processors activated ({}.{:02} BogoMIPS)",
        bogosum / (500_000 / HZ),
        (bogosum / (5000 / HZ)) % 100
    )
}

/// `calculate_max_logical_packages`: DIV_ROUND_UP(total_cpus, the boot package's
/// booted CPUs).
pub fn max_logical_packages(total_cpus: usize, booted_in_boot_package: usize) -> String {
    let n = total_cpus.div_ceil(booted_in_boot_package.max(1));
    format!("smpboot: Max logical packages: {n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lines of Debian's 6.1 on `-smp 4`, one node and two.
    #[test_case]
    fn linux_lines_for_four_cpus() {
        let one_node: String = [
            node_header(0, 1),
            cpu_piece(1, 4),
            cpu_piece(2, 4),
            cpu_piece(3, 4),
        ]
        .concat();
        assert_eq!(one_node, ".... node  #0, CPUs:      #1 #2 #3");
        let first: String = [node_header(0, 2), cpu_piece(1, 4)].concat();
        assert_eq!(first, ".... node  #0, CPUs:      #1");
        let second: String = [node_header(1, 2), cpu_piece(2, 4), cpu_piece(3, 4)].concat();
        assert_eq!(second, ".... node  #1, CPUs:   #2 #3");
        assert_eq!(brought_up(1, 4), "smp: Brought up 1 node, 4 CPUs");
        assert_eq!(brought_up(2, 4), "smp: Brought up 2 nodes, 4 CPUs");
        assert_eq!(brought_up(1, 1), "smp: Brought up 1 node, 1 CPU");
        assert_eq!(
            max_logical_packages(4, 4),
            "smpboot: Max logical packages: 1"
        );
        assert_eq!(
            max_logical_packages(4, 1),
            "smpboot: Max logical packages: 4"
        );
        // Linux: tsc 2596.126 MHz -> lpj=10384504, "5192.25 BogoMIPS" per CPU.
        assert_eq!(lpj_from_tsc(2_596_126_000), 10_384_504);
        assert_eq!(
            calibrating(10_384_504),
            "Calibrating delay loop (skipped), value calculated using timer frequency.. 5192.25 BogoMIPS (lpj=10384504)"
        );
        assert_eq!(
            total_activated(1, 10_384_504),
            "smpboot: Total of 1 processors activated (5192.25 BogoMIPS)"
        );
    }

    /// Wider columns past 9 CPUs and 9 nodes, as Linux pads them.
    #[test_case]
    fn columns_widen_with_more_cpus_and_nodes() {
        assert_eq!(cpu_piece(1, 16), "      #1");
        assert_eq!(cpu_piece(2, 16), "  #2");
        assert_eq!(cpu_piece(12, 16), " #12");
        assert_eq!(node_header(3, 12), ".... node   #3, CPUs:  ");
        assert_eq!(node_header(10, 12), ".... node  #10, CPUs:  ");
        assert_eq!(num_digits(0), 1);
        assert_eq!(num_digits(255), 3);
    }
}
