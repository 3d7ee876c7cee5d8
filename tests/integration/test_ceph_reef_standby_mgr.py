"""The Reef image's standby manager starts its prometheus module, without a lab.

The simulated lab's Ceph 18.2.7 image is made from Debian 13's packages, whose
ceph-mgr under Python 3.13 started no module in a standby manager until the image was
written with labctl's diff (labctl/data/patches, docs/sim.md's "The Ceph image"). Here
the image's own files (its layer, unpacked in the read-only store ``sim up`` makes) are
the root of a one-monitor, two-manager cluster run in a network, mount and PID
namespace of the test's own (loopback only; everything in it dies with it): the active
manager's prometheus module answers on 127.0.0.1:9283 and the standby's on :9284.
The second lab proves the same on nodes after its Reef roll
(tests/e2e/test_second_lab.py's last test); this proves it in about a minute.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from labctl.sim import ceph_image, engine

pytestmark = pytest.mark.integration
IMAGE = "quay.io/ceph/ceph:v18.2.7"
FSID = "0e5ab1e0-7e57-4c0d-9c3a-000000000018"

# Runs as the namespace's first process, with the host's tools; every Ceph program is
# the image's (chroot). The managers' prometheus modules are enabled before either
# starts, so neither restarts; the standby gets its own port.
CLUSTER = r"""
R={root}
ip link set lo up
mount -t overlay overlay -o lowerdir={layer},upperdir={work}/upper,workdir={work}/work $R
mount -t proc proc $R/proc
mount --bind /dev $R/dev
mount -t tmpfs tmpfs $R/run
mount -t tmpfs tmpfs $R/tmp
in_image() {{ chroot $R "$@"; }}
D=/var/lib/ceph/t
mkdir -p $R$D/mon $R$D/x $R$D/y $R/var/run/ceph  # the image has no /var/run
printf '[global]\nfsid = {fsid}\nmon host = [v2:127.0.0.1:3300]\nms bind msgr1 = false\n' \
  > $R/etc/ceph/ceph.conf
in_image ceph-authtool --create-keyring $D/mon.keyring --gen-key -n mon. --cap mon 'allow *'
in_image ceph-authtool --create-keyring /etc/ceph/ceph.client.admin.keyring --gen-key \
  -n client.admin --cap mon 'allow *' --cap mgr 'allow *' --cap osd 'allow *'
in_image ceph-authtool $D/mon.keyring --import-keyring /etc/ceph/ceph.client.admin.keyring
in_image monmaptool --create --addv a '[v2:127.0.0.1:3300]' --fsid {fsid} $D/monmap
in_image ceph-mon --mkfs -i a --monmap $D/monmap --keyring $D/mon.keyring --mon-data $D/mon
in_image ceph-mon -i a --mon-data $D/mon --public-addr 127.0.0.1:3300
ceph() {{ timeout 60 chroot $R ceph --connect-timeout 30 "$@"; }}
ceph mgr module enable prometheus --force
ceph config set mgr mgr/prometheus/server_addr 127.0.0.1 --force
ceph config set mgr mgr/prometheus/y/server_port 9284 --force
for m in x y; do
  ceph auth get-or-create mgr.$m mon 'allow profile mgr' osd 'allow *' > $R$D/$m/keyring
  in_image ceph-mgr -i $m --mgr-data $D/$m --keyring $D/$m/keyring
  [ $m = y ] || sleep 5  # x first: the active one
done
python3 - <<'EOF'
import time, urllib.request
wanted, answered, end = {{"x": 9283, "y": 9284}}, {{}}, time.monotonic() + {deadline}
while len(answered) < len(wanted) and time.monotonic() < end:
    for name, port in wanted.items():
        if name not in answered:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{{port}}/metrics", timeout=3) as r:
                    answered[name] = r.status
            except OSError:
                pass
    time.sleep(1)
for name, port in wanted.items():
    print(f"mgr.{{name}} :{{port}} {{answered.get(name, 'no answer')}}")
EOF
ceph mgr stat -f json
grep -h -e 'Standby mode' -e 'Module not found' $R/var/log/ceph/ceph-mgr.y.log | head -5
"""


def test_the_reef_images_standby_manager_serves_its_prometheus_module(tmp_path: Path) -> None:
    assert os.geteuid() == 0, "namespaces, chroot and mounts need root (CI runs as root)"
    archive = ceph_image.build(IMAGE, engine.image_dir(), "18.2.7")
    layers = sorted((ceph_image.store(IMAGE, archive) / "overlay").glob("*/diff"))
    assert len(layers) == 1, layers  # the image is one layer
    work = tmp_path / "cluster"
    for folder in ("root", "upper", "work"):
        (work / folder).mkdir(parents=True)
    script = CLUSTER.format(
        root=shlex.quote(str(work / "root")),
        layer=shlex.quote(str(layers[0])),
        work=shlex.quote(str(work)),
        fsid=FSID,
        deadline=90,
    )
    argv = ["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child",
            "--propagation", "private", "sh", "-ec", script]  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=240, check=False)
    print(f"reef: one monitor and two managers from the image, run and asked: "
          f"{time.monotonic() - started:.1f} s")  # fmt: skip
    said = done.stdout + done.stderr
    assert done.returncode == 0, said[-4000:]
    assert '"active_name":"x"' in said.replace(" ", ""), said[-4000:]
    assert "mgr.x :9283 200" in said, said[-4000:]  # the active manager
    assert "mgr.y :9284 200" in said, said[-4000:]  # the standby: no answer before the diff
