"""Media: safe input fetching, image decoding and fitting, audio, and MP4 encoding."""
