"""One DM step's feature target on cmnist-mini (width-32 ConvNet, 64 real images per class, IPC 10):
the loss and gradient norm per synthetic embedding of dm+cobra, dm+fairdd and dm+wbary, and how
spread the barycenter's support is against the synthetic cloud (docs/leaderboard.md, "dm+wbary")."""

import torch

from fairbench.data import load_dataset
from fairbench.distill.feature_targets import feature_target
from fairbench.models import build_model

torch.manual_seed(0)
s = load_dataset("cmnist-mini", "data")
tr = s.train
C, G, ipc, per = tr.num_classes, len(tr.group_names), 10, 64
idx = torch.cat([torch.nonzero(tr.labels == c)[:per, 0] for c in range(C)])
synidx = torch.cat([torch.nonzero(tr.labels == c)[per : per + ipc, 0] for c in range(C)])
net = build_model("convnet", 3, C, 32, width=32, depth=3, norm="instance").eval()
real = net.embed(tr.normalize(tr.images[idx])).detach()
labels, groups = tr.labels[idx], tr.groups[idx]
cells = torch.bincount(groups[labels == 0], minlength=G)
print("class 0 group counts in a 64-image batch:", cells.tolist())
for reg in (0.05, 0.5):
    hp = {"ot_reg": reg, "ot_iterations": 30, "bary_iterations": 3, "distance": "mse"}
    for variant in ("cobra", "fairdd", "wbary"):
        syn = net.embed(tr.normalize(tr.images[synidx])).detach().view(C, ipc, -1).requires_grad_(True)
        target = feature_target(variant, real, labels, groups, C, G, syn, hp)
        loss = target.loss(syn)
        loss.backward()
        g = syn.grad.norm(dim=-1)
        extra = ""
        if variant == "wbary":
            sup = target.support
            extra = f" support spread/syn spread {float((sup - sup.mean(1, keepdim=True)).norm(dim=-1).mean() / (syn - syn.mean(1, keepdim=True)).detach().norm(dim=-1).mean()):.3f}"
        print(f"reg {reg} {variant:7s} loss {loss.item():10.2f} grad/point mean {g.mean().item():.4f}{extra}")
