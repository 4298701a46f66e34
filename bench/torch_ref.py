#!/usr/bin/env python3
"""torch_ref.py - a PyTorch reference for expgraph's training throughput.

The same workload and algorithm as `expgraph run` on the quick-start spec (or the
Fashion-MNIST CNN spec), simulated efficiently in one process:

  * n nodes (default 16), each with its own model, batch 32 per node, drawn from its own
    iid shard without replacement (reshuffled when it runs out);
  * model mlp 784-256-10 (ReLU) or cnn conv3x3-16 + ReLU + maxpool2, conv3x3-32 + ReLU +
    maxpool2, dense 128 + ReLU, dense 10 ('same' padding), softmax cross-entropy; or resnet:
    the CIFAR ResNet-20 (He et al. 2016, sec. 4.2, option-A shortcuts) with batch norm per node
    (each node normalises with its own minibatch statistics and keeps its own running
    statistics, as expgraph's `norm_stats: local`), on Fashion-MNIST 1x28x28 or, with
    --image 3x32x32, on random CIFAR-sized inputs (throughput only: no CIFAR on this machine);
  * DmSGD (the paper's Algorithm 1):  m_i <- beta m_i + (g_i + wd x_i);
                                      x_i <- sum_j w_ij (x_j - lr m_j)
    over onepeer_exp (i <- i - 2^(k mod tau), 1/2 each), exp (i <- i - 2^t, t < tau,
    1/(tau+1) each), ring (i-1, i, i+1, 1/3 each) or full (1/n); or `psgd`: one model on
    the all-reduced gradient (the n nodes' batches as one batch of n*32, the same update
    as all-reduce momentum SGD).

Efficiency: every node's parameters live in ONE stacked flat tensor x[n, P] (like expgraph's
flat vector per node); layer weights are views of it, so autograd returns the n gradients as
one g[n, P] and the update and the mixing are a few whole-tensor operations without
allocation. The MLP runs as batched matmuls (torch.baddbmm / bmm over the node axis); the CNN
and the ResNet as grouped convolutions (groups = n, nodes stacked on the channel axis: batch
norm over the n*C channels is then exactly per-node batch norm) and bmm for the dense layers,
or (--conv loop) as one convolution per node. Data: the idx files (gzip or raw) read with numpy, normalised per channel with the
training set's mean and std as expgraph does; minibatches gathered with one index_select.

Prints samples/s (all nodes together) over --iters timed iterations after --warmup ones, and
the best window of --window iterations (the figure bench/run.sh compares, as for expgraph).
--csv: torch,model,graph,nodes,batch,iters,samples_per_s,seconds,loss,best_window_samples_per_s
Run with Debian's python3-torch:  /usr/bin/python3 bench/torch_ref.py --model mlp

--model resnet56 | resnet50 (issue 23, the paper's models; bench_model --big is the expgraph
side): ONE node's forward + backward (softmax cross-entropy, parameter gradients; no update),
what eg_model_loss_grad does: ResNet-56 (the CIFAR ResNet above, batch norm, 3x32x32) at
batch 128, or torchvision's resnet50 (10 classes, 3x224x224) at batch 32, in f32 or, with
--precision bf16, under torch.autocast(bfloat16) (parameters and gradients f32, layers in
bf16, as expgraph's train.precision: bf16); channels-last tensors (oneDNN's fast path in
PyTorch); random inputs. Prints samples/s and GFLOP/s of the best of --iters iterations, with
expgraph's flop count (6 x the convolution and dense MACs, 4 x for the first layer).
--csv: torch,model,precision,threads,batch,iters,samples_per_s,gflops
"""
import argparse
import gzip
import math
import os
import sys
import time

import numpy as np

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # run.sh checks for this and skips the reference
    sys.stderr.write("torch_ref.py: PyTorch is not installed (apt-get install -y python3-torch)\n")
    sys.exit(3)


def tune_malloc():
    """Keep freed memory in the heap: PyTorch's CPU allocator returns every large tensor to
    glibc, which by default unmaps it (blocks >= 128 KiB-32 MiB go to mmap), so each
    iteration page-faults its activations in again; on this VM that costs up to half the
    CNN's time. Raising the mmap threshold to its maximum and never trimming is the usual
    fix (like running with jemalloc/tcmalloc); it only helps the reference."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
        libc.mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024)
        libc.mallopt(M_TRIM_THRESHOLD, 2 ** 31 - 1)
        libc.mallopt(M_TOP_PAD, 256 * 1024 * 1024)
    except (OSError, AttributeError):
        pass


def read_idx(path):
    """numpy array from an idx file (optionally .gz)"""
    for p in (path, path + ".gz"):
        if os.path.exists(p):
            opener = gzip.open if p.endswith(".gz") else open
            with opener(p, "rb") as f:
                raw = f.read()
            break
    else:
        raise FileNotFoundError(path)
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(data_dir):
    xtr = read_idx(os.path.join(data_dir, "train-images-idx3-ubyte")).astype(np.float32)
    ytr = read_idx(os.path.join(data_dir, "train-labels-idx1-ubyte")).astype(np.int64)
    xte = read_idx(os.path.join(data_dir, "t10k-images-idx3-ubyte")).astype(np.float32)
    yte = read_idx(os.path.join(data_dir, "t10k-labels-idx1-ubyte")).astype(np.int64)
    mean, std = float(xtr.mean()), float(xtr.std())
    xtr = (xtr - mean) / std
    xte = (xte - mean) / std  # kept to count the dataset's memory as expgraph does
    return (torch.from_numpy(xtr.reshape(len(xtr), -1)), torch.from_numpy(ytr),
            torch.from_numpy(xte.reshape(len(xte), -1)), torch.from_numpy(yte))


class Stacked:
    """n models' parameters in ONE flat tensor, laid out layer by layer as [n, *shape]
    blocks; each layer is a contiguous leaf view of it (autograd gives one grad per layer)."""

    def __init__(self, n, shapes, seed):
        self.n, self.shapes = n, shapes
        self.sizes = [int(np.prod(s)) for _, s in shapes]
        self.P = sum(self.sizes)  # parameters per node
        gen = torch.Generator().manual_seed(seed)
        self.flat = torch.zeros(n * self.P)
        self.params, off = [], 0
        for (name, shape), size in zip(shapes, self.sizes):
            v = self.flat[off:off + n * size].view(n, *shape)
            if name.startswith("w"):  # Kaiming-uniform on fan-in, zero biases; one draw for
                fan_in = int(np.prod(shape[1:])) if len(shape) > 2 else shape[0]  # every node
                bound = math.sqrt(6.0 / fan_in)
                v.copy_(((torch.rand(size, generator=gen) * 2 - 1) * bound).view(shape))
            elif name.startswith("g"):  # batch-norm scales 1 (shifts 0)
                v.fill_(1.0)
            self.params.append(v.requires_grad_(True))
            off += n * size

    def like(self):
        """a zero flat buffer with the same layout, and its per-layer views"""
        flat = torch.zeros_like(self.flat)
        views, off = [], 0
        for p in self.params:
            views.append(flat[off:off + p.numel()].view(p.shape))
            off += p.numel()
        return flat, views


def mlp_shapes(hidden=256):
    # w1 is [in, out] so that a batch [n, B, in] @ w1 [n, in, out] is one bmm
    return [("w1", (784, hidden)), ("b1", (hidden,)), ("w2", (hidden, 10)), ("b2", (10,))]


def mlp_forward(p, xb):  # xb [n, B, 784]
    w1, b1, w2, b2 = p
    h = torch.relu(torch.baddbmm(b1.unsqueeze(1), xb, w1))
    return torch.baddbmm(b2.unsqueeze(1), h, w2)  # [n, B, 10]


def cnn_shapes(c1=16, c2=32, hidden=128, k=3):
    return [("wc1", (c1, 1, k, k)), ("bc1", (c1,)), ("wc2", (c2, c1, k, k)), ("bc2", (c2,)),
            ("w3", (c2 * 7 * 7, hidden)), ("b3", (hidden,)), ("w4", (hidden, 10)), ("b4", (10,))]


CONV_MODE = "grouped_cl"  # set by --conv


def cnn_forward(p, xb):  # xb [n, B, 784]
    wc1, bc1, wc2, bc2, w3, b3, w4, b4 = p
    n, B = xb.shape[0], xb.shape[1]
    if CONV_MODE == "loop":  # one conv per node (batch B each)
        outs = []
        for i in range(n):
            h = F.conv2d(xb[i].view(B, 1, 28, 28), wc1[i], bc1[i], padding=1)
            h = F.max_pool2d(torch.relu(h), 2)
            h = F.conv2d(h, wc2[i], bc2[i], padding=1)
            outs.append(F.max_pool2d(torch.relu(h), 2).reshape(B, -1))
        h = torch.stack(outs)  # [n, B, c2*49]
    else:
        # nodes on the channel axis: [B, n, 28, 28], conv with groups = n
        h = xb.view(n, B, 28, 28).transpose(0, 1)
        if CONV_MODE == "grouped_cl":  # NHWC: oneDNN's fast layout for grouped convolutions
            h = h.contiguous(memory_format=torch.channels_last)
        h = F.conv2d(h, wc1.reshape(-1, *wc1.shape[2:]), bc1.reshape(-1), padding=1, groups=n)
        h = F.max_pool2d(torch.relu(h), 2)
        h = F.conv2d(h, wc2.reshape(-1, *wc2.shape[2:]), bc2.reshape(-1), padding=1, groups=n)
        h = F.max_pool2d(torch.relu(h), 2)  # [B, n*c2, 7, 7]
        # back to [n, B, c2*49] with the (channel, y, x) order of one node's features
        h = h.reshape(B, n, -1, 7, 7).reshape(B, n, -1).transpose(0, 1)
    h = torch.relu(torch.baddbmm(b3.unsqueeze(1), h, w3))
    return torch.baddbmm(b4.unsqueeze(1), h, w4)


# ---- ResNet-20 with per-node batch norm ------------------------------------------------------

IMAGE = (1, 28, 28)  # set by --image
RESNET = {"depth": 20, "width": 16}
BN_BUFFERS = []  # per batch-norm layer: (running_mean [m*C], running_var [m*C]), m models


def resnet_shapes(classes=10):
    depth, width = RESNET["depth"], RESNET["width"]
    k, c, i = (depth - 2) // 6, width, 1
    shapes = [("wc0", (width, IMAGE[0], 3, 3)), ("g0", (width,)), ("s0", (width,))]
    for stage in range(3):
        co = width << stage
        for _ in range(k):
            for cin in (c, co):
                shapes += [("wc%d" % i, (co, cin, 3, 3)), ("g%d" % i, (co,)), ("s%d" % i, (co,))]
                i += 1
            c = co
    return shapes + [("w_fc", (4 * width, classes)), ("b_fc", (classes,))]


def resnet_buffers(m):
    """fresh running statistics (mean 0, var 1) of every batch-norm layer for m models"""
    BN_BUFFERS.clear()
    for name, shape in resnet_shapes():
        if name.startswith("g"):
            BN_BUFFERS.append((torch.zeros(m * shape[0]), torch.ones(m * shape[0])))


def resnet_body(h, p, bufs, n, groups):
    """h [B, n*C, H, W] (groups = n: the nodes on the channel axis; n = 1: one node);
    returns the pooled features [B, n*4w]"""
    depth, width = RESNET["depth"], RESNET["width"]
    it, bn = iter(p), iter(bufs)

    def conv_bn(h, stride, relu):
        w, g, s = next(it), next(it), next(it)
        rm, rv = next(bn)
        h = F.conv2d(h, w.reshape(-1, *w.shape[-3:]), None, stride=stride, padding=1,
                     groups=groups)
        h = F.batch_norm(h, rm, rv, g.reshape(-1), s.reshape(-1), True, 0.1, 1e-5)
        return torch.relu(h) if relu else h

    h = conv_bn(h, 1, True)
    c = width
    B = h.shape[0]
    for stage in range(3):
        co = width << stage
        for b in range((depth - 2) // 6):
            stride = 2 if stage > 0 and b == 0 else 1
            out = conv_bn(conv_bn(h, stride, True), 1, False)
            sc = h
            if stride != 1 or co != c:  # option A: subsample, zero-pad the channels per node
                sc = h[:, :, ::stride, ::stride]
                sc = sc.reshape(B, n, c, *sc.shape[2:])
                sc = F.pad(sc, (0, 0, 0, 0, 0, co - c)).reshape(B, n * co, *sc.shape[3:])
            h = torch.relu(out + sc)
            c = co
    return h.mean((2, 3))


def resnet_forward(p, xb):  # xb [n, B, C*H*W]
    n, B = xb.shape[0], xb.shape[1]
    w_fc, b_fc = p[-2], p[-1]
    if CONV_MODE == "loop":  # one network per node, batch B each
        feats = []
        for i in range(n):
            h = xb[i].view(B, *IMAGE)
            pi = [q[i] for q in p[:-2]]
            bufs = [(rm.view(n, -1)[i], rv.view(n, -1)[i]) for rm, rv in BN_BUFFERS]
            feats.append(resnet_body(h, pi, bufs, 1, 1))
        h = torch.stack(feats)  # [n, B, 4w]
    else:
        h = xb.view(n, B, *IMAGE).transpose(0, 1).reshape(B, n * IMAGE[0], *IMAGE[1:])
        if CONV_MODE == "grouped_cl":
            h = h.contiguous(memory_format=torch.channels_last)
        h = resnet_body(h, p[:-2], BN_BUFFERS, n, n).view(B, n, -1).transpose(0, 1)
    return torch.baddbmm(b_fc.unsqueeze(1), h, w_fc)


def make_mixer(graph, n):
    """returns mix(z, k, out): out <- W(k) z over the node axis, without allocation"""
    tau = max(1, math.ceil(math.log2(n)))

    def shifted_add(out, z, s, alpha):
        # out[i] += alpha * z[(i - s) mod n]
        s %= n
        if s == 0:
            out.add_(z, alpha=alpha)
            return
        out[s:].add_(z[:n - s], alpha=alpha)
        out[:s].add_(z[n - s:], alpha=alpha)

    if graph == "onepeer_exp":
        def mix(z, k, out):
            out.copy_(z).mul_(0.5)
            shifted_add(out, z, 2 ** (k % tau), 0.5)
    elif graph == "exp":
        shifts = sorted({(2 ** t) % n for t in range(tau)} - {0})
        w = 1.0 / (len(shifts) + 1)

        def mix(z, k, out):
            out.copy_(z).mul_(w)
            for s in shifts:
                shifted_add(out, z, s, w)
    elif graph == "ring":
        def mix(z, k, out):
            out.copy_(z).mul_(1.0 / 3)
            shifted_add(out, z, 1, 1.0 / 3)
            shifted_add(out, z, -1, 1.0 / 3)
    elif graph == "full":
        def mix(z, k, out):
            out.copy_(z.mean(0, keepdim=True).expand_as(z))
    else:
        raise ValueError("unknown graph " + graph)
    return mix


class CifarResNet(torch.nn.Module):
    """He et al. 2016 sec. 4.2 with option-A shortcuts and batch norm, as expgraph's resnet"""

    def __init__(self, depth=56, width=16, classes=10):
        super().__init__()
        nn = torch.nn
        k = (depth - 2) // 6
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        self.blocks = nn.ModuleList()
        self.strides = []
        c = width
        for st in range(3):
            co = width << st
            for b in range(k):
                s = 2 if st > 0 and b == 0 else 1
                self.blocks.append(nn.Sequential(
                    nn.Conv2d(c, co, 3, s, 1, bias=False), nn.BatchNorm2d(co), nn.ReLU(inplace=True),
                    nn.Conv2d(co, co, 3, 1, 1, bias=False), nn.BatchNorm2d(co)))
                self.strides.append((s, co - c))
                c = co
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        x = self.stem(x)
        for blk, (s, extra) in zip(self.blocks, self.strides):
            sc = x[:, :, ::s, ::s] if s > 1 else x
            if extra:
                sc = F.pad(sc, (0, 0, 0, 0, 0, extra))
            x = F.relu(blk(x) + sc)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def conv_dense_flops(model, image):
    """expgraph's count: 6 x MACs of every conv / linear layer, 4 x for the one reading the
    input (no input gradient)"""
    macs = []

    def hook(mod, inp, out):
        if isinstance(mod, torch.nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
            macs.append((inp[0] is first[0], out[0].numel() * k))
        elif isinstance(mod, torch.nn.Linear):
            macs.append((False, mod.in_features * mod.out_features))

    hs = [m.register_forward_hook(hook) for m in model.modules()
          if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    first = [torch.zeros(1, *image)]
    with torch.no_grad():
        model.eval()
        model(first[0])
        model.train()
    for h in hs:
        h.remove()
    return sum((4.0 if is_in else 6.0) * m for is_in, m in macs)


def bench_big(a):
    """--model resnet56 | resnet50: one node's forward + backward, samples/s"""
    torch.manual_seed(a.seed)
    if a.model == "resnet56":
        model, image, B = CifarResNet(56), (3, 32, 32), a.batch or 128
    else:
        try:
            import torchvision
        except ImportError:
            sys.stderr.write("torch_ref.py: torchvision is not installed "
                             "(apt-get install -y python3-torchvision)\n")
            sys.exit(3)
        model, image, B = torchvision.models.resnet50(num_classes=10), (3, 224, 224), a.batch or 32
    fps = conv_dense_flops(model, image)
    model = model.to(memory_format=torch.channels_last).train()
    x = torch.randn(B, *image).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (B,))
    params = [p for p in model.parameters()]
    bf16 = a.precision == "bf16"

    def step():
        for p in params:
            p.grad = None
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss

    for _ in range(a.warmup):
        step()
    best = 0.0
    for _ in range(a.iters):
        t0 = time.perf_counter()
        loss = step()
        best = max(best, B / (time.perf_counter() - t0))
    nparams = sum(p.numel() for p in params)
    if a.csv:
        print("torch,%s,%s,%d,%d,%d,%.2f,%.2f" % (a.model, a.precision, a.threads, B, a.iters,
                                                 best, best * fps / 1e9))
    else:
        print("torch %s (%d threads): %s %s, batch %d, %d params: best of %d iterations "
              "%.2f samples/s, %.1f GFLOP/s (%.3g GFLOP per sample; loss %.3f)"
              % (torch.__version__, a.threads, a.model, a.precision, B, nparams, a.iters, best,
                 best * fps / 1e9, fps / 1e9, float(loss)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=["mlp", "cnn", "resnet", "resnet56", "resnet50"],
                    default="mlp")
    ap.add_argument("--precision", choices=["f32", "bf16"], default="f32",
                    help="resnet56 / resnet50: layer compute (bf16: torch.autocast)")
    ap.add_argument("--image", choices=["1x28x28", "3x32x32"], default="1x28x28",
                    help="resnet: Fashion-MNIST (default) or random CIFAR-sized inputs")
    ap.add_argument("--depth", type=int, default=20, help="resnet depth (6k+2)")
    ap.add_argument("--graph", choices=["onepeer_exp", "exp", "ring", "full", "psgd"],
                    default="onepeer_exp")
    ap.add_argument("--nodes", type=int, default=16)
    ap.add_argument("--batch", type=int, default=None,
                    help="per node (default 32; resnet56 128)")
    ap.add_argument("--iters", type=int, default=100, help="timed iterations")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--window", type=int, default=5,
                    help="iterations per window for the best-window figure")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--wd", type=float, default=None,
                    help="weight decay (default 1e-4 mlp, 5e-4 cnn, as in the specs)")
    ap.add_argument("--data", default=None,
                    help="idx directory (default data/cache/mnist for mlp, "
                         "data/cache/fashion_mnist for cnn)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--conv", choices=["grouped_cl", "grouped", "loop"], default="grouped_cl",
                    help="cnn, resnet: grouped convolution over the nodes in NHWC (default) or "
                         "NCHW layout, or a loop of per-node convolutions")
    ap.add_argument("--no-malloc-tuning", action="store_true",
                    help="leave glibc malloc at its defaults (see tune_malloc)")
    ap.add_argument("--csv", action="store_true", help="one CSV line instead of text")
    ap.add_argument("--whole", action="store_true",
                    help="mlp, cnn: the spec's whole run instead of timed windows: --epochs "
                         "epochs, lr warm-up and cosine decay, the training loss every 50 "
                         "iterations, the test set (x_bar's loss and accuracy, each node's own "
                         "accuracy, the consensus distance) every 200 and at the end; time "
                         "the whole process from outside (bench/run.sh section 5)")
    ap.add_argument("--epochs", type=float, default=4, help="--whole: epochs (the quick start's 4)")
    ap.add_argument("--warmup-epochs", type=float, default=0.5, help="--whole: lr warm-up")
    ap.add_argument("--log-every", type=int, default=50, help="--whole: training-loss rows")
    ap.add_argument("--eval-every", type=int, default=200, help="--whole: test evaluations")
    a = ap.parse_args()
    if a.whole and a.model not in ("mlp", "cnn"):
        ap.error("--whole runs the mlp or cnn spec (the test set of MNIST / Fashion-MNIST)")
    if not a.no_malloc_tuning:
        tune_malloc()
    global CONV_MODE
    CONV_MODE = a.conv

    torch.set_num_threads(a.threads)
    if a.model in ("resnet56", "resnet50"):
        bench_big(a)
        return
    a.batch = a.batch or 32
    torch.manual_seed(a.seed)
    here = os.path.dirname(os.path.abspath(__file__))
    data = a.data or os.path.join(here, "..", "data", "cache",
                                  "mnist" if a.model == "mlp" else "fashion_mnist")
    wd = a.wd if a.wd is not None else (1e-4 if a.model == "mlp" else 5e-4)
    global IMAGE
    RESNET["depth"] = a.depth
    if a.model == "resnet" and a.image == "3x32x32":
        IMAGE = (3, 32, 32)  # random inputs and labels of CIFAR's shape: throughput only
        g = torch.Generator().manual_seed(a.seed)
        xtr = torch.randn(a.nodes * a.batch * 16, 3 * 32 * 32, generator=g)
        ytr = torch.randint(0, 10, (len(xtr),), generator=g)
    else:
        xtr, ytr, xte, yte = load(data)
    dim = int(np.prod(IMAGE))

    psgd = a.graph == "psgd"
    n, B = a.nodes, a.batch
    m_models = 1 if psgd else n  # psgd: one model (every node holds the same copy)
    shapes, fwd = {"mlp": (mlp_shapes, mlp_forward), "cnn": (cnn_shapes, cnn_forward),
                   "resnet": (resnet_shapes, resnet_forward)}[a.model]
    shapes = shapes()
    if a.model == "resnet":
        resnet_buffers(m_models)
    st = Stacked(m_models, shapes, a.seed)
    x, params = st.flat, st.params
    mom, mom_v = st.like()
    z, z_v = st.like()
    mix = None if psgd else make_mixer(a.graph, n)

    # iid shards, each node sampling its own without replacement
    gen = np.random.default_rng(a.seed)
    perm = gen.permutation(len(xtr))
    shards = np.array_split(perm, n)
    cursors = [len(s) for s in shards]
    idx = np.empty(n * B, dtype=np.int64)

    def next_batch():
        for i in range(n):
            s = shards[i]
            if cursors[i] + B > len(s):
                gen.shuffle(s)
                cursors[i] = 0
            idx[i * B:(i + 1) * B] = s[cursors[i]:cursors[i] + B]
            cursors[i] += B
        t = torch.from_numpy(idx)
        return xtr.index_select(0, t), ytr.index_select(0, t)

    def step(k, lr=a.lr):
        xb, yb = next_batch()
        xb = xb.view(m_models, -1, dim)
        logits = fwd(params, xb)
        # sum over nodes of each node's mean loss: the gradient of node i's block is g_i
        loss = F.cross_entropy(logits.reshape(-1, 10), yb, reduction="sum") * (m_models / (n * B))
        for p in params:
            p.grad = None
        loss.backward()
        with torch.no_grad():
            grads = [p.grad for p in params]
            mom.mul_(a.momentum).add_(x, alpha=wd)
            torch._foreach_add_(mom_v, grads)
            if psgd:
                x.sub_(mom, alpha=lr)
            else:
                torch.add(x, mom, alpha=-lr, out=z)
                for zv, p in zip(z_v, params):
                    mix(zv, k, p)
        return loss

    if a.whole:
        whole_run(a, step, params, fwd, xte, yte, dim, n, B, m_models, len(xtr))
        return
    for k in range(a.warmup):
        step(k)
    stamps = [time.perf_counter()]
    for k in range(a.warmup, a.warmup + a.iters):
        loss = step(k)
        stamps.append(time.perf_counter())
    dt = stamps[-1] - stamps[0]
    sps = a.iters * n * B / dt
    # best window of --window iterations: what the code does when the shared machine leaves
    # it alone (the same estimator as bench/run.sh uses for expgraph)
    w = max(1, min(a.window, a.iters))
    best = max(w * n * B / (stamps[i + w] - stamps[i]) for i in range(0, a.iters - w + 1, w))
    if a.csv:
        print("torch,%s,%s,%d,%d,%d,%.1f,%.6f,%.4f,%.1f" % (a.model, a.graph, n, B, a.iters, sps,
                                                            dt, float(loss) / m_models, best))
    else:
        print("torch %s (%d threads): %s, %s, %d nodes x batch %d, %d params per node: "
              "%d iterations in %.2f s -> %.0f samples/s (best %d-iteration window %.0f; "
              "loss %.3f)" % (torch.__version__, a.threads, a.model, a.graph, n, B, st.P,
                              a.iters, dt, sps, w, best, float(loss) / m_models))


def whole_run(a, step, params, fwd, xte, yte, dim, n, B, m_models, n_train):
    """--whole: the spec's run from start to end, as `expgraph run` does it (training, the
    rows of metrics.csv, the evaluations), so that the process's wall time is comparable"""
    per_epoch = n_train // (n * B)
    iters = int(round(a.epochs * per_epoch))
    warm = a.warmup_epochs * per_epoch

    def lr_at(k):  # linear warm-up, then cosine decay to 0 at the last iteration
        if k < warm:
            return a.lr * (k + 1) / warm
        return a.lr * 0.5 * (1 + math.cos(math.pi * (k - warm) / max(1.0, iters - warm)))

    # test samples per forward: every node's copy of a chunk is materialised, and a CNN's
    # activations for 16 nodes x 2,000 samples would take gigabytes
    chunk = 2000 if a.model == "mlp" else 125

    @torch.no_grad()
    def evaluate():
        # x_bar: the mean of the nodes' models; its test loss and accuracy
        xbar = [p.mean(0, keepdim=True) for p in params]
        loss = correct = 0.0
        node_correct = torch.zeros(m_models)
        for c in range(0, len(xte), chunk):
            xc, yc = xte[c:c + chunk], yte[c:c + chunk]
            lg = fwd(xbar, xc.view(1, -1, dim))[0]
            loss += float(F.cross_entropy(lg, yc, reduction="sum"))
            correct += float((lg.argmax(1) == yc).sum())
            # each node's own model on the same samples
            lg = fwd(params, xc.view(1, -1, dim).expand(m_models, -1, -1).contiguous())
            node_correct += (lg.argmax(2) == yc.view(1, -1)).sum(1).float()
        cons = sum(float(((p - xb) ** 2).sum()) for p, xb in zip(params, xbar)) / m_models
        return loss / len(xte), correct / len(xte), float(node_correct.mean()) / len(xte), cons

    t0 = time.perf_counter()
    rows = []
    for k in range(iters):
        loss = step(k, lr_at(k))
        it = k + 1
        if it % a.log_every == 0 or it % a.eval_every == 0 or it == iters:
            row = [it, float(loss) / m_models]
            if it % a.eval_every == 0 or it == iters:
                row += list(evaluate())
            rows.append(row)
    dt = time.perf_counter() - t0
    last = rows[-1]
    if a.csv:
        print("torch_whole,%s,%s,%d,%d,%d,%.4f,%.4f,%.4f" % (a.model, a.graph, n, B, iters, dt,
                                                             last[3], last[4]))
    else:
        print("torch %s (%d threads): %s, %s, %d nodes x batch %d, whole run: %d iterations "
              "(%d per epoch) with %d evaluations in %.2f s (training + evaluation); x_bar "
              "test_acc %.4f, node_acc_mean %.4f" % (torch.__version__, a.threads, a.model,
                                                     a.graph, n, B, iters, per_epoch,
                                                     sum(len(r) > 2 for r in rows), dt,
                                                     last[3], last[4]))


if __name__ == "__main__":
    main()
