//! NUMA topology as the memory manager sees it: how many nodes, their distances, which CPUs
//! each has, and the fallback order of nodes Linux's `build_zonelists` derives from them.
//!
//! The firmware layer (SRAT, SLIT, `numa=fake`) produces the layout; the kernel turns it into a
//! [`Topology`] (plain numbers, no firmware types) and hands it to
//! [`Machine::init_numa`](crate::Machine::init_numa). [`node_order`] is Linux's
//! `find_next_best_node` loop with the same tie-breaking: the local node first, then the nearest
//! node with memory, preferring (at equal distance) nodes above the local one, nodes without CPUs,
//! and nodes that have been first in their distance group for fewer other nodes (`node_load`).

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// Most nodes this memory manager supports (the page stores its node in a byte; Linux's
/// x86_64 default `CONFIG_NODES_SHIFT=6` gives the same 64).
pub const MAX_NUMNODES: usize = 64;
/// `LOCAL_DISTANCE`.
pub const LOCAL_DISTANCE: u8 = 10;
/// `REMOTE_DISTANCE`.
pub const REMOTE_DISTANCE: u8 = 20;
/// The multiplier of `find_next_best_node`'s score (Linux: `MAX_NUMNODES` of the running
/// kernel; Debian's 6.1 has `CONFIG_NODES_SHIFT=10`). It only has to exceed any `node_load`.
const LOAD_SCALE: u64 = 1024;
/// `PENALTY_FOR_NODE_WITH_CPUS`.
const PENALTY_FOR_NODE_WITH_CPUS: u64 = 1;

/// Why a [`Topology`] was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopologyError {
    /// No nodes, or more than [`MAX_NUMNODES`].
    NodeCount(usize),
    /// A distance table that is not `nodes × nodes`.
    DistanceTable,
    /// A CPU list for a node that does not exist.
    CpuNode(usize),
}

impl fmt::Display for TopologyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NodeCount(n) => write!(f, "numa: {n} nodes (1 to {MAX_NUMNODES} supported)"),
            Self::DistanceTable => f.write_str("numa: distance table is not nodes x nodes"),
            Self::CpuNode(n) => write!(f, "numa: CPUs given for node {n}, which does not exist"),
        }
    }
}

/// Nodes `0..nr_nodes`, their distances and CPUs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    nr_nodes: usize,
    distance: Vec<u8>,
    cpus: Vec<Vec<u32>>,
}

impl Topology {
    /// One node with CPU 0 (no SRAT, `numa=off`).
    pub fn single() -> Self {
        Self {
            nr_nodes: 1,
            distance: vec![LOCAL_DISTANCE],
            cpus: vec![vec![0]],
        }
    }

    /// `nr_nodes` nodes with `distance[from * nr_nodes + to]` (empty: 10 local, 20 remote) and
    /// the CPUs of each node (`cpus[nid]`; missing entries: no CPUs).
    pub fn new(
        nr_nodes: usize,
        distance: Vec<u8>,
        mut cpus: Vec<Vec<u32>>,
    ) -> Result<Self, TopologyError> {
        if nr_nodes == 0 || nr_nodes > MAX_NUMNODES {
            return Err(TopologyError::NodeCount(nr_nodes));
        }
        let distance = if distance.is_empty() {
            (0..nr_nodes * nr_nodes)
                .map(|i| {
                    if i / nr_nodes == i % nr_nodes {
                        LOCAL_DISTANCE
                    } else {
                        REMOTE_DISTANCE
                    }
                })
                .collect()
        } else if distance.len() == nr_nodes * nr_nodes {
            distance
        } else {
            return Err(TopologyError::DistanceTable);
        };
        if cpus.len() > nr_nodes {
            return Err(TopologyError::CpuNode(cpus.len() - 1));
        }
        cpus.resize(nr_nodes, Vec::new());
        Ok(Self {
            nr_nodes,
            distance,
            cpus,
        })
    }

    /// Number of nodes (ids `0..nr_nodes`).
    pub fn nr_nodes(&self) -> usize {
        self.nr_nodes
    }

    /// `node_distance(from, to)`; out-of-range ids get the remote distance.
    pub fn distance(&self, from: usize, to: usize) -> u8 {
        if from >= self.nr_nodes || to >= self.nr_nodes {
            return if from == to {
                LOCAL_DISTANCE
            } else {
                REMOTE_DISTANCE
            };
        }
        self.distance[from * self.nr_nodes + to]
    }

    /// The CPUs of node `nid` (`cpumask_of_node`).
    pub fn cpus(&self, nid: usize) -> &[u32] {
        self.cpus.get(nid).map_or(&[], |c| c.as_slice())
    }

    /// The node of CPU `cpu` (`cpu_to_node`), 0 if no node lists it.
    /// `nr_cpu_ids`: one past the highest CPU number on any node (at least 1).
    pub fn nr_cpus(&self) -> usize {
        self.cpus
            .iter()
            .flatten()
            .map(|&c| c as usize + 1)
            .max()
            .unwrap_or(1)
    }

    /// The node of CPU `cpu` (node 0 for a CPU on no node, as Linux's `numa_init_array`).
    pub fn cpu_to_node(&self, cpu: u32) -> usize {
        self.cpus.iter().position(|c| c.contains(&cpu)).unwrap_or(0)
    }
}

/// `find_next_best_node`: the next node for `local`'s fallback order among the nodes with
/// memory not yet `used`, or None when every such node is used.
fn find_next_best_node(
    topo: &Topology,
    local: usize,
    has_memory: &[bool],
    used: &mut [bool],
    node_load: &[u64],
) -> Option<usize> {
    if !used[local] {
        used[local] = true;
        return Some(local);
    }
    let mut best: Option<(u64, usize)> = None;
    for n in (0..topo.nr_nodes()).filter(|&n| has_memory[n] && !used[n]) {
        let mut val = u64::from(topo.distance(local, n));
        val += u64::from(n < local);
        if !topo.cpus(n).is_empty() {
            val += PENALTY_FOR_NODE_WITH_CPUS;
        }
        val = val * LOAD_SCALE + node_load[n];
        if best.is_none_or(|(b, _)| val < b) {
            best = Some((val, n));
        }
    }
    let (_, n) = best?;
    used[n] = true;
    Some(n)
}

/// The fallback node order of every node (`__build_all_zonelists` calling `build_zonelists`
/// for nodes 0, 1, …, with one `node_load` array shared by all of them): `orders[nid]` starts
/// with `nid` itself, then the nodes with memory by distance.
pub fn node_orders(topo: &Topology, has_memory: &[bool]) -> Vec<Vec<usize>> {
    let n = topo.nr_nodes();
    let mut node_load = vec![0u64; n];
    let mut orders = Vec::with_capacity(n);
    for local in 0..n {
        let mut used = vec![false; n];
        let mut order = Vec::new();
        let mut prev = local;
        while let Some(node) = find_next_best_node(topo, local, has_memory, &mut used, &node_load) {
            if topo.distance(local, node) != topo.distance(local, prev) {
                node_load[node] += 1;
            }
            order.push(node);
            prev = node;
        }
        orders.push(order);
    }
    orders
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo(n: usize, d: &[u8], cpus: &[&[u32]]) -> Topology {
        Topology::new(n, d.to_vec(), cpus.iter().map(|c| c.to_vec()).collect()).unwrap()
    }

    #[test]
    fn two_nodes_local_first() {
        let t = topo(2, &[10, 21, 21, 10], &[&[0], &[1]]);
        let o = node_orders(&t, &[true, true]);
        assert_eq!(o, [vec![0, 1], vec![1, 0]]);
        assert_eq!(t.distance(0, 1), 21);
        assert_eq!(t.cpu_to_node(1), 1);
    }

    #[test]
    fn memoryless_nodes_are_never_fallbacks_but_have_an_order() {
        // QEMU's four-node layout of the NUMA scenario: node 3 has a CPU and no memory.
        let t = topo(4, &[], &[&[0], &[1], &[2], &[3]]);
        let o = node_orders(&t, &[true, true, true, false]);
        assert_eq!(o[3][0], 3, "the local node first, even without memory");
        assert!(o.iter().all(|ord| ord.iter().skip(1).all(|&n| n != 3)));
        assert_eq!(o[3].len(), 4);
    }

    #[test]
    fn equal_distances_round_robin_like_linux() {
        // Four nodes all at distance 20 and no CPUs: Linux's node_load spreads the first
        // fallback: node 0 → 1, node 1 → 2 (1 is loaded... and below), node 2 → 3, node 3 → 0.
        let t = topo(4, &[], &[]);
        let o = node_orders(&t, &[true; 4]);
        assert_eq!(o[0], [0, 1, 2, 3]);
        assert_eq!(o[1], [1, 2, 3, 0]);
        assert_eq!(o[2], [2, 3, 0, 1]);
        assert_eq!(o[3], [3, 0, 1, 2]);
    }

    #[test]
    fn nearer_node_wins_and_cpuless_node_is_preferred_at_equal_distance() {
        let d = [
            10, 30, 20, 20, //
            30, 10, 20, 20, //
            20, 20, 10, 20, //
            20, 20, 20, 10,
        ];
        let t = topo(4, &d, &[&[0], &[1], &[2], &[]]);
        let o = node_orders(&t, &[true; 4]);
        // From 0: 2 and 3 at 20; 3 has no CPUs, so it comes first. 1 is last (30).
        assert_eq!(o[0], [0, 3, 2, 1]);
    }

    #[test]
    fn bad_topologies_are_refused() {
        assert_eq!(
            Topology::new(0, vec![], vec![]),
            Err(TopologyError::NodeCount(0))
        );
        assert_eq!(
            Topology::new(65, vec![], vec![]),
            Err(TopologyError::NodeCount(65))
        );
        assert_eq!(
            Topology::new(2, vec![10, 20, 20], vec![]),
            Err(TopologyError::DistanceTable)
        );
        assert_eq!(
            Topology::new(1, vec![], vec![vec![0], vec![1]]),
            Err(TopologyError::CpuNode(1))
        );
    }
}
