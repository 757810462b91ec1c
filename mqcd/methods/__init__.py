"""Mixed quantum-classical methods, each a short recipe of shared parts."""


def method_schema():
    return {"ehrenfest": {}}
