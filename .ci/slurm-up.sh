#!/usr/bin/env bash
# Start a one-node Slurm cluster on this machine, as root, with every file under DIR:
#   .ci/slurm-up.sh DIR        then   export SLURM_CONF=DIR/slurm.conf   (sbatch, squeue and the tests use it)
#   .ci/slurm-down.sh DIR      stops its daemons
# munged, slurmctld and slurmd get their own key, socket, ports, state and spool folders, so the cluster
# leaves the system's /etc/slurm and /etc/munge alone and can run beside another one. No accounting
# storage: job states come from squeue/scontrol (sacct does not work here).
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
for tool in munged slurmctld slurmd sbatch scontrol; do
  command -v "$tool" >/dev/null || { echo "$0: $tool not found; install Debian's slurm-wlm and munge" >&2; exit 2; }
done
[ "$(id -u)" -eq 0 ] || { echo "$0: must run as root (munged, slurmctld and slurmd)" >&2; exit 2; }
dir=$(realpath -m "$1")
mkdir -p "$dir"/{munge,state,spool,log}
chmod 700 "$dir" "$dir/munge"
host=$(hostname -s)
cpus=$(nproc)
memory_mb=$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
read -r ctld_port slurmd_port < <(python3 -c '
import socket
sockets = [socket.socket() for _ in range(2)]
for s in sockets:
    s.bind(("", 0))
print(*(s.getsockname()[1] for s in sockets))')

dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$dir/munge/munge.key"
munged --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
  --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed"

cat > "$dir/slurm.conf" <<CONF
ClusterName=ci
SlurmctldHost=$host
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
NodeName=$host CPUs=$cpus RealMemory=$memory_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

export SLURM_CONF="$dir/slurm.conf"
slurmctld
slurmd -N "$host"
for _ in $(seq 60); do
  if scontrol ping >/dev/null 2>&1 && [ "$(sinfo -h -n "$host" -o %T)" = idle ]; then
    echo "one-node Slurm cluster up ($cpus CPUs): export SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  sleep 1
done
echo "$0: the cluster did not come up; see $dir/log/" >&2
exit 1
