//! The guest's CPU and NUMA topology from the runner's options: `--smp N`, `--numa
//! SIZE[,cpus=LIST]` (repeatable, node i in order), `--numa-dist A,B,VAL` (repeatable,
//! symmetric), `--dimm SIZE[,node=N]` (cold-plugged pc-dimms) and the `node=` of an NVDIMM;
//! checked together, and turned into QEMU's `-smp`, `-numa`, memory-backend and pc-dimm
//! arguments (REFERENCE.md 2b). Every bad combination is one line, which the runner reports
//! as a usage error (exit 64).

use crate::options::parse_size;

/// One `--numa` node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumaNode {
    /// RAM in bytes; 0 for a memoryless node.
    pub size: u64,
    /// CPU indexes (`cpus=0-1,3`).
    pub cpus: Vec<u32>,
}

/// One cold-plugged `--dimm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dimm {
    /// Size in bytes (a multiple of 128 MiB, QEMU's memory-block alignment on x86 is 2 MiB
    /// but Linux onlines memory in 128 MiB blocks).
    pub size: u64,
    /// Proximity domain (`node=`), 0 by default.
    pub node: u32,
}

/// The topology options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topology {
    /// `--smp N`.
    pub smp: Option<u32>,
    /// `--numa` nodes in order.
    pub nodes: Vec<NumaNode>,
    /// `--numa-dist A,B,VAL`.
    pub distances: Vec<(u32, u32, u8)>,
    /// `--dimm`s.
    pub dimms: Vec<Dimm>,
}

/// Most CPUs QEMU's `pc` machine takes without an IOMMU for x2APIC (APIC ids up to 254).
pub const MAX_CPUS: u32 = 255;
/// Most NUMA nodes (the kernel's, as Linux's MAX_NUMNODES with NODES_SHIFT 6).
pub const MAX_NODES: usize = 64;

fn parse_u32(what: &str, s: &str) -> Result<u32, String> {
    s.parse().map_err(|_| format!("bad {what} '{s}'"))
}

/// `0-1,3` → [0, 1, 3].
pub fn parse_cpu_list(s: &str) -> Result<Vec<u32>, String> {
    let mut cpus = Vec::new();
    for item in s.split(',') {
        let (a, b) = match item.split_once('-') {
            Some((a, b)) => (parse_u32("CPU", a)?, parse_u32("CPU", b)?),
            None => {
                let a = parse_u32("CPU", item)?;
                (a, a)
            }
        };
        if b < a || b >= MAX_CPUS {
            return Err(format!(
                "bad CPU range '{item}' (CPUs are 0 to {})",
                MAX_CPUS - 1
            ));
        }
        cpus.extend(a..=b);
    }
    Ok(cpus)
}

impl Topology {
    /// Takes `--smp`, `--numa`, `--numa-dist` and `--dimm`; `None` for any other option.
    pub fn take(&mut self, name: &str, value: &str) -> Option<Result<(), String>> {
        Some(match name {
            "--smp" => parse_u32("--smp", value).map(|n| self.smp = Some(n)),
            "--numa" => self.take_node(value),
            "--numa-dist" => self.take_distance(value),
            "--dimm" => self.take_dimm(value),
            _ => return None,
        })
    }

    fn take_node(&mut self, value: &str) -> Result<(), String> {
        let mut parts = value.split(",cpus=");
        let size = parse_size(parts.next().unwrap_or(""))?;
        let cpus = match parts.next() {
            Some(list) => parse_cpu_list(list)?,
            None => Vec::new(),
        };
        if parts.next().is_some() || size % (2 << 20) != 0 {
            return Err(format!(
                "bad --numa '{value}' (SIZE[,cpus=LIST], SIZE a multiple of 2M or 0)"
            ));
        }
        self.nodes.push(NumaNode { size, cpus });
        Ok(())
    }

    fn take_distance(&mut self, value: &str) -> Result<(), String> {
        let v: Vec<&str> = value.split(',').collect();
        let [a, b, d] = v[..] else {
            return Err(format!("bad --numa-dist '{value}' (A,B,VAL)"));
        };
        let (a, b) = (parse_u32("node", a)?, parse_u32("node", b)?);
        let d: u8 = d
            .parse()
            .map_err(|_| format!("bad distance '{d}' (10 to 255)"))?;
        self.distances.push((a, b, d));
        Ok(())
    }

    fn take_dimm(&mut self, value: &str) -> Result<(), String> {
        let mut parts = value.split(',');
        let size = parse_size(parts.next().unwrap_or(""))?;
        let mut node = 0;
        for p in parts {
            match p.strip_prefix("node=") {
                Some(n) => node = parse_u32("node", n)?,
                None => return Err(format!("bad --dimm option '{p}' (expected node=N)")),
            }
        }
        if size == 0 || size % (128 << 20) != 0 {
            return Err(format!(
                "--dimm size must be a non-zero multiple of 128M, got '{value}'"
            ));
        }
        self.dimms.push(Dimm { size, node });
        Ok(())
    }

    /// Number of nodes the guest has (1 without `--numa`).
    pub fn node_count(&self) -> usize {
        self.nodes.len().max(1)
    }

    /// Checks the options together. `mem` is `--mem` if it was given; returns the guest's
    /// RAM (the nodes' sum with `--numa`). `nvdimm_nodes` are the NVDIMMs' `node=`.
    pub fn check(&self, mem: Option<u64>, nvdimm_nodes: &[u32]) -> Result<Option<u64>, String> {
        let smp = self.smp.unwrap_or(1);
        if smp == 0 || smp > MAX_CPUS {
            return Err(format!("--smp must be 1 to {MAX_CPUS}"));
        }
        if self.nodes.len() > MAX_NODES {
            return Err(format!("at most {MAX_NODES} --numa nodes"));
        }
        let nodes = self.node_count() as u32;
        let mut owner = vec![None; smp as usize];
        for (i, n) in self.nodes.iter().enumerate() {
            for &c in &n.cpus {
                let Some(slot) = owner.get_mut(c as usize) else {
                    return Err(format!("--numa node {i}: CPU {c} is not below --smp {smp}"));
                };
                if let Some(j) = *slot {
                    return Err(format!("CPU {c} is in --numa node {j} and node {i}"));
                }
                *slot = Some(i);
            }
        }
        for &(a, b, d) in &self.distances {
            if self.nodes.is_empty() {
                return Err("--numa-dist needs --numa nodes".into());
            }
            if a >= nodes || b >= nodes {
                return Err(format!("--numa-dist {a},{b}: there are {nodes} nodes"));
            }
            if (a == b && d != 10) || (a != b && d <= 10) {
                return Err(format!(
                    "--numa-dist {a},{b},{d}: a node is at 10 from itself and above 10 from others"
                ));
            }
        }
        for &n in nvdimm_nodes
            .iter()
            .chain(self.dimms.iter().map(|d| &d.node))
        {
            if n >= nodes {
                return Err(format!("node={n}: there are {nodes} nodes"));
            }
        }
        if self.nodes.is_empty() {
            return Ok(mem);
        }
        let sum = self
            .nodes
            .iter()
            .try_fold(0u64, |s, n| s.checked_add(n.size))
            .ok_or("--numa sizes overflow")?;
        if sum == 0 {
            return Err("--numa: at least one node needs memory".into());
        }
        match mem {
            Some(m) if m != sum => Err(format!(
                "--mem {}M is not the sum of the --numa sizes ({}M); leave --mem out",
                m >> 20,
                sum >> 20
            )),
            _ => Ok(Some(sum)),
        }
    }

    /// The guest RAM: `-object` backends (reserve=off, so large guests boot on a small
    /// host) and, without `--numa`, the backend the `pc` machine takes whole.
    pub fn ram_args(&self, mem: u64) -> (Vec<String>, Option<&'static str>) {
        let mut args = Vec::new();
        if self.nodes.is_empty() {
            args.push("-object".into());
            args.push(format!(
                "memory-backend-ram,id=zoned.ram,size={}M,reserve=off",
                mem >> 20
            ));
            return (args, Some("zoned.ram"));
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if n.size > 0 {
                args.push("-object".into());
                args.push(format!(
                    "memory-backend-ram,id=zoned.node{i},size={}M,reserve=off",
                    n.size >> 20
                ));
            }
        }
        (args, None)
    }

    /// `-smp`, `-accel` (multi-threaded TCG above one CPU), `-numa` and pc-dimm arguments.
    pub fn qemu_args(&self) -> Vec<String> {
        let mut a: Vec<String> = Vec::new();
        let smp = self.smp.unwrap_or(1);
        if smp > 1 {
            a.extend(["-smp".into(), smp.to_string()]);
            a.extend(["-accel".into(), "tcg,thread=multi".into()]);
        }
        for (i, n) in self.nodes.iter().enumerate() {
            let mut node = format!("node,nodeid={i}");
            if n.size > 0 {
                node += &format!(",memdev=zoned.node{i}");
            }
            for c in &n.cpus {
                node += &format!(",cpus={c}");
            }
            a.extend(["-numa".into(), node]);
        }
        for &(s, d, v) in &self.distances {
            a.extend(["-numa".into(), format!("dist,src={s},dst={d},val={v}")]);
        }
        for (i, d) in self.dimms.iter().enumerate() {
            a.extend([
                "-object".into(),
                format!(
                    "memory-backend-ram,id=zoned.dimm{i},size={}M,reserve=off",
                    d.size >> 20
                ),
                "-device".into(),
                format!("pc-dimm,id=dimm{i},memdev=zoned.dimm{i},node={}", d.node),
            ]);
        }
        a
    }

    /// Slots and bytes of maxmem the cold-plugged DIMMs take.
    pub fn dimm_room(&self) -> (u32, u64) {
        (
            self.dimms.len() as u32,
            self.dimms.iter().map(|d| d.size).sum(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo(args: &[(&str, &str)]) -> Result<Topology, String> {
        let mut t = Topology::default();
        for (n, v) in args {
            t.take(n, v).expect("a topology option")?;
        }
        Ok(t)
    }

    #[test]
    fn two_nodes_with_distance() {
        let t = topo(&[
            ("--smp", "2"),
            ("--numa", "512M,cpus=0"),
            ("--numa", "512M,cpus=1"),
            ("--numa-dist", "0,1,21"),
        ])
        .unwrap();
        assert_eq!(t.check(None, &[]), Ok(Some(1 << 30)));
        assert_eq!(
            t.qemu_args().join(" "),
            "-smp 2 -accel tcg,thread=multi -numa node,nodeid=0,memdev=zoned.node0,cpus=0 \
             -numa node,nodeid=1,memdev=zoned.node1,cpus=1 -numa dist,src=0,dst=1,val=21"
        );
        let (objs, backend) = t.ram_args(1 << 30);
        assert_eq!(backend, None);
        assert_eq!(objs.len(), 4);
    }

    #[test]
    fn memoryless_node_and_dimm() {
        let t = topo(&[
            ("--smp", "4"),
            ("--numa", "1G,cpus=0-1"),
            ("--numa", "0,cpus=2-3"),
            ("--dimm", "256M,node=1"),
        ])
        .unwrap();
        assert_eq!(t.check(Some(1 << 30), &[1]), Ok(Some(1 << 30)));
        let a = t.qemu_args().join(" ");
        assert!(a.contains("-numa node,nodeid=1,cpus=2,cpus=3"), "{a}");
        assert!(
            a.contains("pc-dimm,id=dimm0,memdev=zoned.dimm0,node=1"),
            "{a}"
        );
        assert_eq!(t.dimm_room(), (1, 256 << 20));
    }

    #[test]
    fn bad_combinations() {
        let bad = |args: &[(&str, &str)], mem: Option<u64>, nv: &[u32]| {
            topo(args).and_then(|t| t.check(mem, nv)).unwrap_err()
        };
        assert!(bad(&[("--smp", "0")], None, &[]).contains("--smp"));
        assert!(bad(&[("--numa", "512M,cpus=2")], None, &[]).contains("CPU 2"));
        assert!(
            bad(
                &[
                    ("--smp", "2"),
                    ("--numa", "1G,cpus=0-1"),
                    ("--numa", "1G,cpus=1")
                ],
                None,
                &[]
            )
            .contains("CPU 1 is in")
        );
        assert!(bad(&[("--numa", "1G"), ("--numa-dist", "0,1,21")], None, &[]).contains("nodes"));
        assert!(
            bad(
                &[
                    ("--numa", "1G"),
                    ("--numa", "1G"),
                    ("--numa-dist", "0,1,10")
                ],
                None,
                &[]
            )
            .contains("above 10")
        );
        assert!(bad(&[("--numa", "1G")], Some(2 << 30), &[]).contains("sum"));
        assert!(bad(&[("--numa", "0")], None, &[]).contains("needs memory"));
        assert!(bad(&[("--numa", "1G")], None, &[1]).contains("node=1"));
        assert!(bad(&[("--dimm", "256M,node=3")], None, &[]).contains("node=3"));
        assert!(bad(&[("--numa-dist", "0,0,10")], None, &[]).contains("needs --numa"));
        assert!(topo(&[("--numa", "1G,cpus=3-1")]).is_err());
        assert!(topo(&[("--numa", "1M")]).is_err());
        assert!(topo(&[("--numa-dist", "0,1")]).is_err());
        assert!(topo(&[("--numa-dist", "0,1,300")]).is_err());
        assert!(topo(&[("--dimm", "100M")]).is_err());
        assert!(topo(&[("--dimm", "128M,slot=2")]).is_err());
    }
}
