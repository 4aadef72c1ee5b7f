"""nasheed's audio signal type for python-threatexchange and HMA (Hasher-Matcher-Actioner).

Enable it with ``threatexchange config extensions add nasheed.tx_extension``, or in an HMA
deployment by listing ``NasheedSignal`` and ``AudioContent`` in the OMM config (see
python/README.md). ``TX_MANIFEST`` is what both load.
"""

from threatexchange.extensions.manifest import ThreatExchangeExtensionManifest

from nasheed.tx_extension.content import AudioContent
from nasheed.tx_extension.index import NasheedIndex, NasheedSimilarityInfo
from nasheed.tx_extension.signal import NasheedSignal

TX_MANIFEST = ThreatExchangeExtensionManifest(
    signal_types=(NasheedSignal,),
    content_types=(AudioContent,),
)

__all__ = [
    "TX_MANIFEST",
    "AudioContent",
    "NasheedIndex",
    "NasheedSignal",
    "NasheedSimilarityInfo",
]
