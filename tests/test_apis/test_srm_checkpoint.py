"""add_srm_to_checkpoint / merge_srm_state and their thin CLI
tools/model_converters/add_srm_to_panoptic_fpn.py: a StandaloneSRM added to
a stock PanopticFPN checkpoint that then loads strictly; every wrong
input refused with the file named, output checks before any file is read,
and a crafted pickle refused without running."""
import os
import os.path as osp
import re

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config

from mmoanet.apis import SRMMergeError, add_srm_to_checkpoint, merge_srm_state
from mmoanet.apis.srm_checkpoint import srm_config_of
from mmoanet.datasets import SYNTHETIC_OCCLUSION_METAINFO
from mmoanet.utils import (CorruptCheckpointError, OutputPathError,
                           UnsafeCheckpointError, check_checkpoint_matches,
                           load_checkpoint_safely)
from tests.utils import (TINY_PFPN_CONFIG, TINY_PFPN_SRM_CONFIG,
                         TINY_SRM_CONFIG, load_script)

add_srm_to_panoptic_fpn = load_script(
    'tools/model_converters/add_srm_to_panoptic_fpn.py')

DATASET_META = dict(
    classes=list(SYNTHETIC_OCCLUSION_METAINFO['classes']),
    thing_classes=list(SYNTHETIC_OCCLUSION_METAINFO['thing_classes']))
CFG_TEXT = ("model = dict(type='StandaloneSRM', srm=dict("
            "type='SpatialRankingModule', num_things_classes=6, "
            "kernel='1x7+7x1', train_input='gt'))\n"
            "train_cfg = dict(max_iters=7)\n")


class _Payload:
    """Unpickling it would create ``path``: proof that code ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


@pytest.fixture(scope='module')
def stock(tmp_path_factory):
    """A stock tiny PanopticFPN checkpoint: (state dict, path)."""
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(TINY_PFPN_CONFIG).model)
    path = str(tmp_path_factory.mktemp('stock') / 'panoptic_fpn.pth')
    torch.save(
        dict(
            state_dict=model.state_dict(),
            meta=dict(note='stock', dataset_meta=DATASET_META)), path)
    return model.state_dict(), path


def srm_checkpoint(folder, num_things=6, name='iter_7.pth', meta=None):
    """A StandaloneSRM checkpoint as the Runner writes it."""
    torch.manual_seed(1)
    cfg = Config.fromfile(TINY_SRM_CONFIG)
    cfg.model.srm.num_things_classes = num_things
    model = MODELS.build(cfg.model)
    with torch.no_grad():
        for param in model.parameters():
            param.uniform_(-1, 1)
    path = str(folder / name)
    torch.save(
        dict(
            state_dict=model.state_dict(),
            meta=meta if meta is not None else dict(
                iter=7, cfg=CFG_TEXT, dataset_meta=DATASET_META),
            optimizer=dict(state={}, param_groups=[])), path)
    return model.srm.state_dict(), path


def test_merged_checkpoint_loads_strictly_into_panoptic_fpn_srm(
        stock, tmp_path):
    stock_state, stock_path = stock
    srm_state, srm_path = srm_checkpoint(tmp_path)
    out = str(tmp_path / 'merged.pth')
    summary = add_srm_to_checkpoint(stock_path, srm_path, out)
    assert summary['srm_tensors'] == len(srm_state)
    assert summary['detector_tensors'] == len(stock_state)
    assert (summary['num_things_classes'], summary['srm_iter']) == (6, 7)

    model = MODELS.build(Config.fromfile(TINY_PFPN_SRM_CONFIG).model)
    check_checkpoint_matches(model, out)  # strict: every tensor present
    merged = load_checkpoint_safely(out)
    model.load_state_dict(merged['state_dict'], strict=True)
    assert 'optimizer' not in merged
    meta = merged['meta']
    assert meta['note'] == 'stock' and meta['dataset_meta'] == DATASET_META
    assert meta['srm']['iter'] == 7
    assert meta['srm']['srm_cfg'] == dict(
        type='SpatialRankingModule',
        num_things_classes=6,
        kernel='1x7+7x1',
        train_input='gt')
    assert meta['srm']['thing_classes'] == DATASET_META['thing_classes']
    for key, value in stock_state.items():
        assert torch.equal(model.state_dict()[key], value)
    for key, value in srm_state.items():
        assert torch.equal(model.panoptic_fusion_head.srm.state_dict()[key],
                           value)

    # An SRM already there: refused unless force, which replaces it.
    again = str(tmp_path / 'again.pth')
    with pytest.raises(SRMMergeError, match='already holds SRM.*--force'):
        add_srm_to_checkpoint(out, srm_path, again)
    other_state, other_path = srm_checkpoint(
        tmp_path, name='other.pth', meta=dict(iter=3))
    add_srm_to_checkpoint(out, other_path, again, force=True)
    replaced = load_checkpoint_safely(again)
    assert replaced['meta']['srm'] == dict(num_things_classes=6, iter=3)
    assert len(replaced['state_dict']) == len(merged['state_dict'])


def test_cli_prints_what_it_wrote(stock, tmp_path, capsys):
    _, stock_path = stock
    _, srm_path = srm_checkpoint(tmp_path)
    out = str(tmp_path / 'cli.pth')
    add_srm_to_panoptic_fpn.main([stock_path, srm_path, out])
    printed = capsys.readouterr().out
    assert re.search(
        re.escape(out) + r': \d+ detector tensors \+ 5 SRM tensors', printed)
    with pytest.raises(OutputPathError, match='exists.*--force'):
        add_srm_to_panoptic_fpn.main([stock_path, srm_path, out])
    add_srm_to_panoptic_fpn.main([stock_path, srm_path, out, '--force'])


def test_output_checks_come_before_any_input_is_read(stock, tmp_path):
    """A malicious input would run on load: the output errors come first,
    so the payload's marker is never created."""
    _, stock_path = stock
    marker = tmp_path / 'payload_ran'
    evil = str(tmp_path / 'evil.pth')
    torch.save(dict(state_dict={}, meta=_Payload(str(marker))), evil)
    existing = tmp_path / 'existing.pth'
    existing.write_bytes(b'keep me')
    with pytest.raises(OutputPathError, match='exists'):
        add_srm_to_checkpoint(stock_path, evil, str(existing))
    assert existing.read_bytes() == b'keep me'
    for out in (stock_path, evil):  # an input, even with force
        with pytest.raises(OutputPathError, match='also an input'):
            add_srm_to_checkpoint(stock_path, evil, out, force=True)
    a_file = tmp_path / 'a_file'
    a_file.write_text('')
    with pytest.raises(OutputPathError, match='not a folder'):
        add_srm_to_checkpoint(stock_path, evil, str(a_file / 'out.pth'))
    assert not marker.exists()


@pytest.mark.parametrize('which', ['detector', 'srm'])
def test_a_crafted_pickle_is_refused_and_not_run(stock, tmp_path, which):
    _, stock_path = stock
    _, srm_path = srm_checkpoint(tmp_path)
    marker = tmp_path / 'payload_ran'
    evil = str(tmp_path / 'evil.pth')
    torch.save(
        dict(state_dict={'srm.w': torch.zeros(1)}, meta=_Payload(str(marker))),
        evil)
    args = [evil, srm_path] if which == 'detector' else [stock_path, evil]
    with pytest.raises(UnsafeCheckpointError, match=re.escape(evil)):
        add_srm_to_panoptic_fpn.main([*args, str(tmp_path / 'out.pth')])
    assert not marker.exists()
    assert not osp.exists(tmp_path / 'out.pth')


def test_a_truncated_checkpoint_is_named(stock, tmp_path):
    _, stock_path = stock
    _, srm_path = srm_checkpoint(tmp_path)
    cut = tmp_path / 'cut.pth'
    with open(stock_path, 'rb') as f:
        cut.write_bytes(f.read()[:5000])
    with pytest.raises(CorruptCheckpointError, match=re.escape(str(cut))):
        add_srm_to_checkpoint(str(cut), srm_path, str(tmp_path / 'out.pth'))


def srm_ckpt(num_things=6):
    return dict(
        state_dict={
            'srm.left_kx1.weight': torch.zeros(num_things, num_things, 7, 1)
        },
        meta=dict(iter=1))


def test_wrong_srm_inputs_are_refused(stock):
    stock_state, _ = stock
    detector = dict(state_dict=stock_state)
    with pytest.raises(
            SRMMergeError, match='SRM file is not a StandaloneSRM checkpoint'):
        merge_srm_state(detector, detector, srm_name='SRM file')
    with pytest.raises(SRMMergeError, match='holds no tensors'):
        merge_srm_state(detector, dict(state_dict={}))
    mixed = srm_ckpt()
    mixed['state_dict']['backbone.conv1.weight'] = torch.zeros(1)
    with pytest.raises(SRMMergeError, match='backbone.conv1.weight'):
        merge_srm_state(detector, mixed)
    with pytest.raises(
            SRMMergeError,
            match='DET classifies 6 thing classes .*fc_cls.*ranks 3'):
        merge_srm_state(detector, srm_ckpt(3), detector_name='DET')
    other_names = srm_ckpt()
    other_names['meta']['dataset_meta'] = dict(
        thing_classes=['a', 'b', 'c', 'd', 'e', 'f'])
    with pytest.raises(SRMMergeError, match='thing classes differ'):
        merge_srm_state(
            dict(state_dict=stock_state, meta=dict(dataset_meta=DATASET_META)),
            other_names)


def test_wrong_detector_inputs_are_refused(stock):
    stock_state, _ = stock
    with pytest.raises(SRMMergeError, match='DET holds no detector tensors'):
        merge_srm_state({}, srm_ckpt(), detector_name='DET')
    with pytest.raises(SRMMergeError, match='no detector tensors'):
        merge_srm_state(dict(state_dict={}, meta={}), srm_ckpt())
    with pytest.raises(SRMMergeError, match='it is an SRM checkpoint'):
        merge_srm_state(srm_ckpt(), srm_ckpt())
    oanet = dict(stock_state)
    oanet['semantic_head.level_convs.0.weight'] = torch.zeros(1)
    oanet['panoptic_fusion_head.srm.left_kx1.weight'] = torch.zeros(1)
    with pytest.raises(SRMMergeError, match='an OANet checkpoint'):
        merge_srm_state(dict(state_dict=oanet), srm_ckpt(), force=True)
    no_panoptic_head = {
        key: value
        for key, value in stock_state.items()
        if not key.startswith('semantic_head.')
    }
    with pytest.raises(SRMMergeError, match='not a PanopticFPN checkpoint'):
        merge_srm_state(dict(state_dict=no_panoptic_head), srm_ckpt())
    # A bare state dict with a DDP prefix is a checkpoint too.
    bare = {'module.' + key: value for key, value in stock_state.items()}
    merged = merge_srm_state(bare, srm_ckpt())
    assert 'panoptic_fusion_head.srm.left_kx1.weight' in merged['state_dict']
    assert merged['meta']['srm'] == dict(num_things_classes=6, iter=1)


def test_the_srm_config_is_parsed_never_run(tmp_path):
    marker = tmp_path / 'ran'
    text = (f"import os\nos.system('touch {marker}')\n" + CFG_TEXT +
            f"model = dict(srm=open({str(marker)!r}, 'w'))\n")
    assert srm_config_of(dict(cfg=text)) is None
    assert not marker.exists()
    assert srm_config_of(dict(cfg=CFG_TEXT))['num_things_classes'] == 6
    assert srm_config_of(dict(cfg='model = (')) is None
    assert srm_config_of({}) is None
    assert not os.path.exists(marker)
