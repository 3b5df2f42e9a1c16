"""Compression recipes that rewrite workload traces (see recipe.py for the file format).

    recipe = load_recipe("mxfp4_weights+kivi2+h2o")   # bundled names, paths, or '+'-joined
    trace2 = recipe.apply(trace, model)                 # or apply_recipe(trace, spec, model)
"""

from workloads.compression.recipe import (Param, Recipe, RecipeError, apply_recipe, list_methods,
                                          list_recipes, load_recipe, recipe_from_dict, register_method)

__all__ = ["Recipe", "RecipeError", "Param", "load_recipe", "apply_recipe", "list_recipes",
           "list_methods", "recipe_from_dict", "register_method"]
