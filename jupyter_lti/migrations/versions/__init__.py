"""The store's revisions, oldest first by their ids (a package only so the wheel ships them as code)."""
