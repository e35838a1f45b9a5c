"""Model families; importing this package registers every model for `load`."""

from chainrule.models.autoregressive import AutoregressiveModel
from chainrule.models.base import MODEL_REGISTRY, Model, build_model, register_model
from chainrule.models.categorical_nade import CategoricalNADE
from chainrule.models.char_rnn import CharRNN
from chainrule.models.deep_nade import DeepNADE, DeepRNADE
from chainrule.models.diagonal_bilstm import DiagonalBiLSTM
from chainrule.models.fvsbn import FVSBN
from chainrule.models.gated_pixelcnn import GatedPixelCNN
from chainrule.models.gaussian import Gaussian
from chainrule.models.image import ImageAutoregressiveModel
from chainrule.models.made import MADE
from chainrule.models.mixture import GaussianMixtureModel
from chainrule.models.nade import NADE
from chainrule.models.pixelcnn import PixelCNN
from chainrule.models.pixelrnn import PixelRNN
from chainrule.models.rnade import RNADE
from chainrule.models.rnn_attention import RNNAttention
from chainrule.models.row_lstm import RowLSTM
from chainrule.models.sequence import SequenceModel
from chainrule.models.transformer import CausalTransformer
from chainrule.models.uniform_latent import UniformLatent
from chainrule.models.untied_nade import UntiedNADE
from chainrule.models.vae import VAE
from chainrule.models.wavenet import WaveNet

__all__ = [
    "AutoregressiveModel",
    "CategoricalNADE",
    "CausalTransformer",
    "CharRNN",
    "DeepNADE",
    "DeepRNADE",
    "DiagonalBiLSTM",
    "FVSBN",
    "GatedPixelCNN",
    "Gaussian",
    "GaussianMixtureModel",
    "ImageAutoregressiveModel",
    "MADE",
    "MODEL_REGISTRY",
    "Model",
    "NADE",
    "PixelCNN",
    "PixelRNN",
    "RNADE",
    "RNNAttention",
    "RowLSTM",
    "SequenceModel",
    "UniformLatent",
    "UntiedNADE",
    "VAE",
    "WaveNet",
    "build_model",
    "register_model",
]
