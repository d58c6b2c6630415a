#!/usr/bin/python3
"""Gather training backgrounds (the `BG/` folder of ../train/train.py) from Debian's wallpaper
packages without installing them: `apt-get download` the .debs into a cache, `dpkg -x` them
there, take their raster images (PNG, JPEG, WebP; SVG is skipped, not rasterised), drop small
and transparent ones, write each as an RGB JPEG (quality 92, long side <= --max-side) named
PACKAGE__STEM.jpg, drop pixel-identical duplicates, and write OUT/manifest.tsv.

`plasma-workspace-wallpapers` and `mate-backgrounds` are kept for evaluation and are refused
even when asked for. See README.md, "Backgrounds".
"""
import argparse
import concurrent.futures
import fnmatch
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
import npm_cache  # noqa: E402  (the project's download cache)

# Held out for evaluation: never trained on, refused even when named with --packages.
EXCLUDED = ('plasma-workspace-wallpapers', 'mate-backgrounds')

# Debian 12 (bookworm) packages with photos or rich rendered images (checked with apt-cache
# search wallpaper / backgrounds / artwork and dpkg -c; .deb sizes as of 12.11).
DEFAULT_PACKAGES = (
    'gnome-backgrounds',        # 33 MB: GNOME 43 wallpapers, WebP renders and photos
    'ukui-wallpapers',          # 21 MB: Ubuntu Kylin photos (flowers, fish, city) and renders
    'lomiri-wallpapers',        # 3 MB: Ubuntu's warty-final
    'lomiri-wallpapers-16.04',  # 16 MB: Ubuntu 16.04 contest photos (bridge, dragonfly, ...)
    'lomiri-wallpapers-20.04',  # 11 MB: Ubuntu 20.04 contest photos
    'lxqt-themes',              # 26 MB: LXQt wallpapers (photos: rain, flowers, Valendas, ...)
    'sway-backgrounds',         # 5 MB: sway's rendered wallpapers at several sizes
    'desktop-base',             # 8 MB: Debian themes (mostly SVG; the PNG renders are kept)
    'xfdesktop4-data',          # 1 MB: Xfce's default wallpapers
    'debian-edu-artwork-emerald',    # 2 MB: Debian Edu themes, PNG renders
    'debian-edu-artwork-softwaves',  # 2 MB
)
# Looked at and left out: enlightenment-data (400 MB, mostly theme parts), mypaint-data-extras
# (paper textures), xplanet-images (planet maps), lxde-common (three flat colours), ukui-themes
# (icons), fvwm-crystal (three 1024 x 768 abstracts), plasma-wallpapers-addons (plugins, no
# images). Not in Debian 12: budgie-backgrounds, xfce4-artwork, ubuntu-wallpapers,
# cinnamon-backgrounds, deepin-wallpapers.

RASTER = ('.png', '.jpg', '.jpeg', '.webp')
VECTOR = ('.svg', '.svgz')
QUALITY = 92


def default_cache():
    return os.path.join(npm_cache.default_cache(), 'debs')


def refuse_excluded(packages, log=sys.stderr):
    """Return the packages without the excluded ones, saying which were refused."""
    kept, refused = [], []
    for p in packages:
        (refused if p in EXCLUDED else kept).append(p)
    for p in refused:
        print(f'backgrounds: refusing {p}: it is kept for evaluation and must not be '
              f'trained on', file=log)
    return kept, refused


def _run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, **kw)


def candidate_version(pkg):
    try:
        out = _run(['apt-cache', 'show', '--no-all-versions', pkg]).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    m = re.search(r'^Version: (\S+)', out, re.M)
    return m.group(1) if m else None


def deb_field(deb, field):
    return _run(['dpkg-deb', '-f', deb, field]).stdout.strip()


def fetch(pkg, cache):
    """The .deb of pkg in cache (downloaded unless the candidate version is there already)."""
    os.makedirs(cache, exist_ok=True)
    want = candidate_version(pkg)
    have = {}
    for name in os.listdir(cache):
        if name.startswith(pkg + '_') and name.endswith('.deb'):
            path = os.path.join(cache, name)
            try:
                if deb_field(path, 'Package') == pkg:
                    have[deb_field(path, 'Version')] = path
            except subprocess.CalledProcessError:
                pass
    if want is not None and want in have:
        return have[want]
    if want is None:
        if have:  # no apt lists (offline): use what the cache has
            return have[sorted(have)[-1]]
        raise RuntimeError(f'{pkg}: not known to apt-cache and not in {cache}')
    cmd = ['apt-get', 'download', '-q', pkg]
    if os.geteuid() == 0:  # root: no _apt sandbox (the cache is usually not _apt's)
        cmd[1:1] = ['-o', 'APT::Sandbox::User=root']
    try:
        _run(cmd, cwd=cache)
    except subprocess.CalledProcessError as e:
        raise RuntimeError(f'{pkg}: apt-get download failed: {e.stderr.strip()}') from None
    for name in os.listdir(cache):
        path = os.path.join(cache, name)
        if (name.startswith(pkg + '_') and name.endswith('.deb')
                and deb_field(path, 'Package') == pkg and deb_field(path, 'Version') == want):
            return path
    raise RuntimeError(f'{pkg}: downloaded, but no .deb of version {want} in {cache}')


def extract(deb, cache):
    """dpkg -x the .deb into cache/root/NAME (once); return the tree."""
    name = os.path.basename(deb)[:-4]
    root = os.path.join(cache, 'root', name)
    if os.path.isfile(os.path.join(root, '.extracted')):
        return root
    with npm_cache.staged(root) as tmp:
        _run(['dpkg', '-x', deb, tmp])
        open(os.path.join(tmp, '.extracted'), 'w').close()
    return root


def fetch_evaluation_package(pkg, cache):
    """(version, extracted tree) of one of the EXCLUDED packages, for the video evaluation set
    of ../videoset/make_videoset.py only: the evaluation route, separate from main(), which
    keeps refusing them for training."""
    if pkg not in EXCLUDED:
        raise ValueError(f'{pkg} is not an evaluation package ({", ".join(EXCLUDED)})')
    deb = fetch(pkg, cache)
    return deb_field(deb, 'Version'), extract(deb, cache)


def copyright_stanzas(root, pkg):
    """[(Files patterns, licence)] of the package's machine-readable (DEP-5) copyright file,
    in file order; [] when there is none or it is free-form."""
    path = os.path.join(root, 'usr/share/doc', pkg, 'copyright')
    if os.path.islink(path) or not os.path.isfile(path):
        return []
    with open(path, encoding='utf-8', errors='replace') as f:
        paragraphs = f.read().split('\n\n')
    if not paragraphs or not paragraphs[0].lstrip().startswith('Format:'):
        return []
    stanzas = []
    for para in paragraphs[1:]:
        fields, key = {}, None
        for line in para.splitlines():
            if line[:1] in (' ', '\t'):
                if key == 'Files':  # a License's continuation is its text, not its name
                    fields[key] += ' ' + line.strip()
            elif ':' in line:
                key, value = line.split(':', 1)
                fields[key.strip()] = value.strip()
        if fields.get('Files') and fields.get('License'):
            stanzas.append((fields['Files'].split(), fields['License']))
    return stanzas


def licence(stanzas, installed):
    """(licence, the Files pattern that gave it) of an installed file: the last stanza whose
    pattern matches the end of its path (DEP-5's patterns name source paths, and installed
    paths end with them more often than not; '*' matches everything), else
    ('see copyright', '')."""
    found = ('see copyright', '')
    rel = installed.lstrip('/')
    for patterns, lic in stanzas:
        for pattern in patterns:
            pattern = pattern.lstrip('./')
            if pattern == '*' or fnmatch.fnmatchcase(rel, pattern) \
                    or fnmatch.fnmatchcase(rel, '*/' + pattern):
                found = (lic, pattern)
    return found


def find_images(root):
    """(raster paths, vector paths) under root, sorted; symlinks are not followed."""
    raster, vector = [], []
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(d, f)
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            ext = os.path.splitext(f)[1].lower()
            if ext in RASTER:
                raster.append(p)
            elif ext in VECTOR:
                vector.append(p)
    return raster, vector


def safe(text):
    return re.sub(r'[^A-Za-z0-9._+-]+', '_', text).strip('_') or 'image'


def convert(path, max_side, min_side):
    """Decode, check, resize and encode one image.
    Returns ('ok', pixel_sha256, jpeg_bytes, (w, h)) or ('skip', reason)."""
    from PIL import Image, ImageOps
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            im.load()
    except Exception as e:  # not an image Pillow reads
        return ('skip', f'unreadable: {type(e).__name__}')
    w, h = im.size
    if min(w, h) < min_side:
        return ('skip', f'small: {w}x{h}')
    if im.mode in ('RGBA', 'LA', 'PA') or (im.mode == 'P' and 'transparency' in im.info):
        a = im.convert('RGBA').getchannel('A')
        hist = a.histogram()
        if sum(hist[:250]) > 0.01 * w * h:
            return ('skip', 'transparent')
    im = im.convert('RGB')
    scale = max_side / max(w, h)
    if scale < 1:
        im = im.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS)
    digest = hashlib.sha256(b'%dx%d:' % im.size + im.tobytes()).hexdigest()
    buf = io.BytesIO()
    im.save(buf, 'JPEG', quality=QUALITY)
    return ('ok', digest, buf.getvalue(), im.size)


def collect(trees, out, max_side=1600, min_side=480, jobs=None, log=sys.stderr):
    """trees: [(package, version, extracted root)]. Writes OUT/*.jpg, OUT/manifest.tsv and
    OUT/skipped.tsv; returns a dict of counts."""
    os.makedirs(out, exist_ok=True)
    old = os.path.join(out, 'manifest.tsv')
    if os.path.isfile(old):  # a rerun: remove what the last run wrote
        with open(old, encoding='utf-8') as f:
            for line in list(f)[1:]:
                name = line.split('\t', 1)[0]
                if name and '/' not in name and os.path.isfile(os.path.join(out, name)):
                    os.remove(os.path.join(out, name))
    work = []
    skipped = []
    for pkg, version, root in trees:
        raster, vector = find_images(root)
        stanzas = copyright_stanzas(root, pkg)
        for p in vector:
            skipped.append((pkg, '/' + os.path.relpath(p, root), 'svg'))
        for p in raster:
            lic = licence(stanzas, '/' + os.path.relpath(p, root))
            work.append((pkg, version, lic, root, p))
    jobs = jobs or min(8, os.cpu_count() or 1)
    with concurrent.futures.ProcessPoolExecutor(jobs) as pool:
        results = list(pool.map(convert, [w[4] for w in work],
                                [max_side] * len(work), [min_side] * len(work)))
    kept = []      # (work item, pixel hash, jpeg bytes), duplicates left out
    seen = {}      # pixel hash -> original path of the first copy
    for item, res in zip(work, results):
        pkg, root, p = item[0], item[3], item[4]
        orig = '/' + os.path.relpath(p, root)
        if res[0] == 'skip':
            skipped.append((pkg, orig, res[1]))
        elif res[1] in seen:
            skipped.append((pkg, orig, f'duplicate of {seen[res[1]]}'))
        else:
            seen[res[1]] = orig
            kept.append((item, res[1], res[2]))
    # PACKAGE__STEM.jpg; where a stem occurs twice in a package (desktop-base's themes each
    # have a grub-16x9.png), PACKAGE__DIR_DIR_STEM.jpg from the last three path components
    stems = {}
    for (pkg, _, _, _, p), _, _ in kept:
        k = (pkg, safe(os.path.splitext(os.path.basename(p))[0]))
        stems[k] = stems.get(k, 0) + 1
    names = set()
    rows = []
    nbytes = 0
    for (pkg, version, lic, root, p), digest, data in kept:
        stem = safe(os.path.splitext(os.path.basename(p))[0])
        if stems[(pkg, stem)] > 1:
            parts = os.path.relpath(p, root).split(os.sep)[-3:-1]
            stem = safe('_'.join(parts + [stem]))
        name = f'{safe(pkg)}__{stem}.jpg'
        if name in names:
            name = f'{safe(pkg)}__{stem}-{digest[:8]}.jpg'
        names.add(name)
        with open(os.path.join(out, name), 'wb') as f:
            f.write(data)
        nbytes += len(data)
        rows.append((name, pkg, version, lic[0], lic[1], '/' + os.path.relpath(p, root)))
    with open(os.path.join(out, 'manifest.tsv'), 'w', encoding='utf-8') as f:
        f.write('file\tpackage\tversion\tlicence\tlicence_from\toriginal\n')
        for r in rows:
            f.write('\t'.join(r) + '\n')
    with open(os.path.join(out, 'skipped.tsv'), 'w', encoding='utf-8') as f:
        f.write('package\toriginal\treason\n')
        for r in skipped:
            f.write('\t'.join(r) + '\n')
    counts = {'images': len(rows), 'bytes': nbytes, 'candidates': len(work),
              'skipped': len(skipped)}
    for _, _, reason in skipped:
        key = reason.split(':')[0].split(' ')[0]
        counts[key] = counts.get(key, 0) + 1
    return counts


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('out', metavar='OUT', help='the BG folder to write')
    ap.add_argument('--cache', default=default_cache(),
                    help='where the .debs are downloaded and unpacked (default %(default)s)')
    ap.add_argument('--packages', help='comma-separated Debian packages (default: %s)'
                    % ','.join(DEFAULT_PACKAGES))
    ap.add_argument('--max-side', type=int, default=1600, help='long side at most (1600)')
    ap.add_argument('--min-side', type=int, default=480,
                    help='drop images whose short side is smaller (480)')
    ap.add_argument('--jobs', type=int, default=None, help='decoding processes')
    a = ap.parse_args(argv)
    packages = (a.packages.split(',') if a.packages else list(DEFAULT_PACKAGES))
    packages = [p.strip() for p in packages if p.strip()]
    packages, refused = refuse_excluded(packages)
    if not packages:
        print('backgrounds: no packages left', file=sys.stderr)
        return 2
    for tool in ('dpkg', 'dpkg-deb'):
        if shutil.which(tool) is None:
            print(f'backgrounds: {tool} not found (Debian only)', file=sys.stderr)
            return 77
    trees = []
    fetched = 0
    for pkg in packages:
        try:
            deb = fetch(pkg, a.cache)
        except RuntimeError as e:
            print(f'backgrounds: {e}', file=sys.stderr)
            return 1
        fetched += os.path.getsize(deb)
        root = extract(deb, a.cache)
        trees.append((pkg, deb_field(deb, 'Version'), root))
        print(f'backgrounds: {pkg} {trees[-1][1]} ({os.path.getsize(deb) / 1e6:.1f} MB)',
              file=sys.stderr)
    c = collect(trees, a.out, a.max_side, a.min_side, a.jobs)
    print(f'backgrounds: {c["images"]} images, {c["bytes"] / 1e6:.1f} MB in {a.out} '
          f'(from {fetched / 1e6:.0f} MB of .debs; {c["candidates"]} raster candidates; '
          f'skipped: ' + ', '.join(f'{k} {v}' for k, v in sorted(c.items())
                                   if k not in ('images', 'bytes', 'candidates', 'skipped'))
          + ')', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
