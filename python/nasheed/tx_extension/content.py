"""The audio content type: threatexchange has photo, video, text, URL and PDF, no audio."""

from threatexchange.content_type.content_base import ContentType


class AudioContent(ContentType):
    """
    Recorded sound: songs, chants, speeches, podcasts.

    Examples might be:
    * mp3, m4a/aac, ogg/opus/vorbis, flac, wav, aiff
    * the audio track of a video (``NasheedSignal`` also applies to ``VideoContent``: the
      decoder reads the sound of mp4, mov, mkv and webm files)
    """
