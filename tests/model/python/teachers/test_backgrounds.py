#!/usr/bin/python3
"""Offline test of model/python/teachers/backgrounds.py: a fake extracted package tree (no apt, no
network) through collect(); filtering, resizing, de-duplication, naming, the manifest, and the
refusal of the evaluation packages. Exit 77 = skipped (numpy or Pillow missing)."""
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "..", "model", "python", "teachers"))
try:
    import numpy as np
    from PIL import Image
except ImportError:
    sys.exit(77)
import backgrounds as bg  # noqa: E402


def img(path, w, h, seed, mode='RGB'):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (h, w, 4 if mode == 'RGBA' else 3), dtype=np.uint8)
    if mode == 'RGBA':
        a[..., 3] = 0
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(a, mode).save(path)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, 'root', 'fake-wallpapers')
        share = os.path.join(root, 'usr/share/backgrounds')
        img(f'{share}/big photo.jpg', 2400, 1200, 1)          # resized to 1600 x 800
        img(f'{share}/small.png', 640, 480, 2)                # kept as it is
        img(f'{share}/tiny.png', 300, 200, 3)                 # dropped: short side < 480
        img(f'{share}/copy/small.png', 640, 480, 2)           # same pixels: duplicate
        img(f'{share}/logo.png', 800, 600, 4, 'RGBA')         # dropped: transparent
        img(f'{root}/usr/share/a/theme/bg.png', 700, 500, 5)  # same stem twice, different
        img(f'{root}/usr/share/b/theme/bg.png', 700, 500, 6)  # pixels: named by directory
        with open(f'{share}/vector.svg', 'w') as f:
            f.write('<svg xmlns="http://www.w3.org/2000/svg" width="900" height="900"/>')
        os.symlink(f'{share}/big photo.jpg', f'{share}/link.jpg')  # symlinks: not followed
        doc = os.path.join(root, 'usr/share/doc/fake-wallpapers')
        os.makedirs(doc)
        with open(f'{doc}/copyright', 'w') as f:
            f.write('Format: x\n\nFiles: *\nCopyright: someone\nLicense: CC-BY-SA-4.0\n'
                    '\nFiles: debian/*\nLicense: GPL-2+\n'
                    '\nFiles: artwork/cc0/*.png\n backgrounds/small.png\nLicense: CC0-1.0\n'
                    ' Its text, which is not its name.\n')
        out = os.path.join(tmp, 'BG')
        c = bg.collect([('fake-wallpapers', '1.0-1', root)], out, max_side=1600,
                       min_side=480, jobs=2)
        files = sorted(f for f in os.listdir(out) if f.endswith('.jpg'))
        want = ['fake-wallpapers__a_theme_bg.jpg', 'fake-wallpapers__b_theme_bg.jpg',
                'fake-wallpapers__big_photo.jpg', 'fake-wallpapers__small.jpg']
        assert files == want, files
        assert c['images'] == 4 and c['small'] == 1 and c['duplicate'] == 1, c
        assert c['transparent'] == 1 and c['svg'] == 1, c
        with Image.open(os.path.join(out, 'fake-wallpapers__big_photo.jpg')) as im:
            assert im.format == 'JPEG' and im.mode == 'RGB' and im.size == (1600, 800), \
                (im.format, im.mode, im.size)
        with Image.open(os.path.join(out, 'fake-wallpapers__small.jpg')) as im:
            assert im.size == (640, 480), im.size
        with open(os.path.join(out, 'manifest.tsv')) as f:
            rows = [line.rstrip('\n').split('\t') for line in f]
        assert rows[0] == ['file', 'package', 'version', 'licence', 'licence_from',
                           'original'], rows[0]
        byname = {r[0]: r for r in rows[1:]}
        assert sorted(byname) == want, byname
        # the last DEP-5 stanza whose pattern ends the installed path
        assert byname['fake-wallpapers__small.jpg'][1:] == [
            'fake-wallpapers', '1.0-1', 'CC0-1.0', 'backgrounds/small.png',
            '/usr/share/backgrounds/small.png'], byname['fake-wallpapers__small.jpg']
        assert byname['fake-wallpapers__big_photo.jpg'][3:] == [
            'CC-BY-SA-4.0', '*', '/usr/share/backgrounds/big photo.jpg']
        with open(os.path.join(out, 'skipped.tsv')) as f:
            skipped = f.read()
        assert 'copy/small.png\tduplicate of /usr/share/backgrounds/small.png' in skipped, skipped
        assert 'tiny.png\tsmall: 300x200' in skipped and 'vector.svg\tsvg' in skipped, skipped
        # a rerun with a smaller --max-side replaces the files, it does not add to them
        bg.collect([('fake-wallpapers', '1.0-1', root)], out, max_side=800, min_side=480,
                   jobs=1)
        assert sorted(f for f in os.listdir(out) if f.endswith('.jpg')) == want
        with Image.open(os.path.join(out, 'fake-wallpapers__big_photo.jpg')) as im:
            assert im.size == (800, 400), im.size
        # no copyright file, or a free-form one: "see copyright"
        assert bg.copyright_stanzas(os.path.join(tmp, 'nowhere'), 'x') == []
        with open(f'{doc}/copyright', 'w') as f:
            f.write('This package was debianized by someone.\nLicense: GPL\n')
        assert bg.copyright_stanzas(root, 'fake-wallpapers') == []
        assert bg.licence([], '/usr/share/backgrounds/small.png') == ('see copyright', '')

    # the evaluation packages are refused, from the list and from the command line
    log = open(os.devnull, 'w')
    kept, refused = bg.refuse_excluded(['gnome-backgrounds', 'mate-backgrounds',
                                        'plasma-workspace-wallpapers'], log=log)
    assert kept == ['gnome-backgrounds'], kept
    assert refused == ['mate-backgrounds', 'plasma-workspace-wallpapers'], refused
    assert not set(bg.EXCLUDED) & set(bg.DEFAULT_PACKAGES)
    with tempfile.TemporaryDirectory() as tmp:
        rc = bg.main([os.path.join(tmp, 'BG'), '--cache', tmp,
                      '--packages', 'mate-backgrounds,plasma-workspace-wallpapers'])
        assert rc == 2 and not os.listdir(tmp), (rc, os.listdir(tmp))
    print('backgrounds: ok')


if __name__ == '__main__':
    main()
