"""Reinforcement learning's own pure code: the environments (Gymnasium) and Karpathy's Pong
preprocessing (envs.py), discounted returns and advantages (returns.py), the replay buffer and the
DQN target (replay.py). No Streamlit, no training loop: the Tasks in train/tasks/rl.py use these."""
