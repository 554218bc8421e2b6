"""Each regularizer matches its equation on a hand-computed case and trains the encoder."""
import math
from types import SimpleNamespace

import pytest
import torch

from latentsketch.models.rae import RAE, RaeConfig, training_loss
from latentsketch.regularizers import RegularizerInput, regularization
from latentsketch.regularizers.barlow import barlow_twins_loss, standardize
from latentsketch.regularizers.classif import ClassifRegularizer
from latentsketch.regularizers.kl import kl_to_standard_normal, reparametrize
from latentsketch.regularizers.proto import prototype_loss
from latentsketch.regularizers.simclr import nt_xent
from latentsketch.regularizers.vq import VectorQuantizer, vq_loss


def test_kl_of_a_known_gaussian_sums_dimensions_and_averages_the_batch():
    mean = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)], [0.0, 0.0]])
    # Sample 1: ½(1 + 1 − 1 − 0) + ½(0 + 2 − 1 − ln 2); sample 2 is N(0, I): 0.
    expected = (0.5 + 0.5 * (1 - math.log(2.0))) / 2
    assert kl_to_standard_normal(mean, logvar).item() == pytest.approx(expected, rel=1e-6)


def test_reparametrized_sample_has_the_posterior_spread():
    mean, logvar = torch.full((20000, 1), 3.0), torch.full((20000, 1), math.log(4.0))
    sample = reparametrize(mean, logvar, torch.Generator().manual_seed(0))
    assert sample.mean().item() == pytest.approx(3.0, abs=0.05)
    assert sample.std().item() == pytest.approx(2.0, abs=0.05)


def known_quantizer():
    quantizer = VectorQuantizer(latent_dim=8, codebook_size=2, subvector_dim=4)
    with torch.no_grad():
        quantizer.codebook.copy_(torch.tensor([[0.0] * 4, [1.0] * 4]))
    return quantizer


def test_vq_replaces_each_subvector_by_its_nearest_codeword():
    latent = torch.tensor([[0.1, 0.2, 0.0, 0.0, 0.9, 1.0, 1.2, 0.8]], requires_grad=True)
    straight_through, codewords = known_quantizer()(latent)
    assert codewords.tolist() == [[0.0] * 4 + [1.0] * 4]
    assert torch.equal(straight_through, codewords)
    straight_through.sum().backward()  # the decoder's gradient passes straight to z
    assert latent.grad.tolist() == [[1.0] * 8]


def test_vq_codebook_starts_at_subvectors_of_real_latents():
    quantizer = VectorQuantizer(latent_dim=8, codebook_size=6, subvector_dim=4)
    latents = torch.arange(32.0).reshape(4, 8)  # sub-vectors [0..3], [4..7], ...
    quantizer.initialize_from(latents, torch.Generator().manual_seed(0))
    starts = quantizer.codebook[:, 0].tolist()
    assert len(set(starts)) == 6 and all(s % 4 == 0 for s in starts)
    assert torch.equal(quantizer.codebook[:, 1:] - quantizer.codebook[:, :1],
                       torch.tensor([1.0, 2.0, 3.0]).expand(6, 3))


def test_vq_loss_is_both_terms_of_eq3_as_means_over_latent_elements():
    latent = torch.tensor([[0.1, 0.2, 0.0, 0.0, 0.9, 1.0, 1.2, 0.8]], requires_grad=True)
    quantizer = known_quantizer()
    _, codewords = quantizer(latent)
    loss = vq_loss(latent, codewords)
    # Squared errors 0.01+0.04+0.01+0.04+0.04 = 0.14 over 8 elements, once per term.
    assert loss.item() == pytest.approx(2 * 0.14 / 8, rel=1e-5)
    loss.backward()
    assert latent.grad.abs().sum() > 0  # commitment term reaches the encoder
    assert quantizer.codebook.grad.abs().sum() > 0  # codebook term moves the codewords


def test_classif_with_a_blank_head_costs_log_of_the_category_count():
    regularizer = ClassifRegularizer(latent_dim=3, n_classes=5)
    torch.nn.init.zeros_(regularizer.head.weight)
    torch.nn.init.zeros_(regularizer.head.bias)
    batch = RegularizerInput(encoding=SimpleNamespace(latent=torch.randn(4, 3)),
                             labels=torch.tensor([0, 1, 2, 4]))
    assert regularizer(batch).item() == pytest.approx(math.log(5), rel=1e-6)


def test_proto_logits_are_negative_squared_distances_to_distinct_exemplars():
    # Variations 0 and 1 share category 5: one exemplar, never its own negative.
    variations = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0]])
    exemplars = torch.tensor([[0.0, 0.0], [0.0, 2.0]])
    loss = prototype_loss(variations, exemplars, torch.tensor([5, 5, 7]),
                          torch.tensor([5, 7]))
    # Squared distances: (0, 4), (1, 5), (9, 1); targets: exemplar 0, 0, 1.
    expected = (2 * math.log(1 + math.exp(-4)) + math.log(1 + math.exp(-8))) / 3
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_nt_xent_of_identical_views_leaves_only_the_other_drawing_as_negatives():
    views = torch.eye(2)
    # Each view: positive cosine 1, two negatives at cosine 0, temperature 0.5.
    expected = math.log(1 + 2 * math.exp(-2))
    assert nt_xent(views, views.clone(), 0.5).item() == pytest.approx(expected, rel=1e-6)


def test_nt_xent_of_orthogonal_views_is_log_of_the_candidate_count():
    features = torch.eye(4)
    loss = nt_xent(features[:2], features[2:], 0.5)
    assert loss.item() == pytest.approx(math.log(3), rel=1e-6)


def test_barlow_of_identical_decorrelated_views_is_zero():
    views = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    assert barlow_twins_loss(views, views.clone(), 5e-3).item() == pytest.approx(0, abs=1e-8)


def test_barlow_of_redundant_features_costs_lambda_per_off_diagonal_pair():
    column = torch.tensor([1.0, 1.0, -1.0, -1.0])
    views = torch.stack([column, column], dim=1)  # C = all ones: diagonal right, 2 off
    loss = barlow_twins_loss(views, views.clone(), 5e-3)
    assert loss.item() == pytest.approx(2 * 5e-3, rel=1e-4)


def test_barlow_standardizes_with_the_biased_variance_and_no_affine():
    features = torch.tensor([[0.0], [2.0], [4.0], [6.0]])
    standardized = standardize(features, eps=0.0)
    assert standardized.squeeze().tolist() == pytest.approx(
        [-3 / math.sqrt(5), -1 / math.sqrt(5), 1 / math.sqrt(5), 3 / math.sqrt(5)])


def tiny_batch(seed=0, n=8):
    gen = torch.Generator().manual_seed(seed)
    images = (torch.rand(n, 1, 48, 48, generator=gen) > 0.85).float()
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])[:n]
    exemplars = (torch.rand(4, 1, 48, 48, generator=gen) > 0.85).float()
    return images, labels, exemplars


@pytest.mark.parametrize("name", ["kl", "vq", "classif", "proto", "simclr", "barlow"])
def test_each_regularizer_alone_sends_gradient_to_the_encoder(name):
    torch.manual_seed(0)
    rae = RAE(RaeConfig(latent_dim=8, betas={name: 1.0}, n_classes=4, vq_codebook_size=16,
                        proto_projector_width=16, contrastive_probe_dim=16))
    images, labels, exemplars = tiny_batch()
    _, terms = training_loss(rae, images, labels, torch.Generator().manual_seed(1), exemplars)
    terms[name].backward()
    first_conv = rae.encoder.trunk[0].weight.grad
    assert first_conv is not None and first_conv.abs().sum() > 0
    assert rae.decoder.layers[0].weight.grad is None  # the term alone never decodes


def test_a_mix_weights_each_term_by_its_beta():
    torch.manual_seed(0)
    betas = {"proto": 5.0, "barlow": 50.0}
    rae = RAE(RaeConfig(latent_dim=8, betas=betas, n_classes=4, proto_projector_width=16,
                        contrastive_probe_dim=16))
    images, labels, exemplars = tiny_batch()
    total, terms = training_loss(rae, images, labels, torch.Generator().manual_seed(1),
                                 exemplars)
    expected = terms["reconstruction"] + 5.0 * terms["proto"] + 50.0 * terms["barlow"]
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)


def test_none_has_no_regularizer_and_its_loss_is_the_reconstruction():
    rae = RAE(RaeConfig(latent_dim=8, betas={}))
    images, labels, _ = tiny_batch()
    total, terms = training_loss(rae, images, labels, torch.Generator().manual_seed(1))
    assert len(rae.regularizers) == 0 and list(terms) == ["reconstruction"]
    assert total.item() == terms["reconstruction"].item()


def test_proto_gets_one_exemplar_per_distinct_category_of_the_batch():
    rae = RAE(RaeConfig(latent_dim=8, betas={"proto": 1.0}, n_classes=4,
                        proto_projector_width=16))
    seen = {}
    original = rae.regularizers["proto"].forward

    def spy(batch):
        seen["exemplar_labels"] = batch.exemplar_labels.tolist()
        seen["exemplar_rows"] = len(batch.exemplar_latents)
        return original(batch)

    rae.regularizers["proto"].forward = spy
    images, _, exemplars = tiny_batch(n=5)
    labels = torch.tensor([2, 0, 2, 2, 0])
    training_loss(rae, images, labels, torch.Generator().manual_seed(1), exemplars)
    assert seen == {"exemplar_labels": [0, 2], "exemplar_rows": 2}


def test_regularization_of_an_empty_mix_is_zero():
    total, terms = regularization(torch.nn.ModuleDict(), {},
                                  RegularizerInput(encoding=None, labels=torch.zeros(2)))
    assert total.item() == 0.0 and terms == {}
