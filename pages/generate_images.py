"""Generate images: play with a trained generator (issue 19). Pick a shipped GAN or VAE or a
saved run; sample a grid from a seed; walk from one sample to another on the sphere; add and
subtract samples; for a VAE, click its latent map to decode any point; ask the discriminator
about your own image; replay the grids kept while a run trained."""
import streamlit as st

from karp_models.i18n import N_, _
from karp_models.ui import generate_images as ui
from karp_models.ui import generator_views as views
from karp_models.ui import style

st.title(_("Generate images"))
style.projector_css()
st.markdown("##### " + _("A generator turns a list of random numbers (its latent vector z) into "
                         "a picture. Draw some, then walk between them and do sums with them."))

g = ui.picker()
if g is None:
    st.stop()

# --- the samples every view below chooses from

grid_col, controls = st.columns([3, 2], gap="medium")
seed, n, cls, spread = ui.sample_controls(g, controls)
grid = ui.make_grid(g, seed, n, cls, spread)
with grid_col:
    ui.show_grid(g, grid, seed)

# --- what to do with them: one view at a time (only the chosen one computes)

VIEWS = {N_("Interpolate"): ui.interpolate_view, N_("Latent arithmetic"): ui.arithmetic_view}
if g.kind == "vae":
    VIEWS[N_("Latent map")] = lambda g, grid: ui.map_view(g)
    VIEWS[N_("Your image")] = views.reconstruct_view
else:
    VIEWS[N_("The discriminator's verdict")] = views.verdict_view
VIEWS[N_("Time-lapse of training")] = lambda g, grid: views.timelapse_view(g)

view = st.segmented_control(_("View"), list(VIEWS), default=list(VIEWS)[0], format_func=_,
                            key=f"generate_images_view_{g.kind}", bind="query-params")
VIEWS[view or list(VIEWS)[0]](g, grid)
