"""The procedural 3D data engine: random SDF objects and scenes with solid textures, rendered by
sphere tracing in torch with exact depth, normals, masks and SDF.

Modules: ``sdf`` (primitives and operations), ``texture`` (solid materials), ``shapes`` (random
shape styles), ``objects`` (``ProceduralObject``, ``random_object``, ``random_scene``), ``trace``
(``render_sdf``, ``Lighting``), ``rigs`` (random cameras), ``mesh`` (SDF queries, samples, GT
meshes), ``item`` (``make_item``, ``object_for_seed``). Import from the modules; this package
file imports nothing heavy.
"""
