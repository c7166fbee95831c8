"""The formats values are written in; each module imports its library only when used."""
