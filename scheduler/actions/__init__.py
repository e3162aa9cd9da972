"""The scheduling actions of the catalogue; each joins it through settings.ENGINE_ROOM_ACTIONS."""
